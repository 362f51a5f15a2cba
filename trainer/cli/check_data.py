"""`python -m trainer check-data PATH`: can every clip of a dataset be trained on, and if not, why not.

Exit 0 when every clip is usable, 1 when any is not (each named with its reasons), 2 when PATH is missing or
holds no dataset in an accepted layout.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import get_args

from trainer.datasets import DatasetError, ItemReport, check_items, detect_layout, list_items, relative_name
from trainer.spec.config import CaptionVariant
from trainer.spec.embedded import resolve_data

CAPTION_WIDTH = 40  # characters of each caption shown in the table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path", metavar="PATH", help='Dataset folder in any accepted layout, or "sample" / "sample:held_out".'
    )
    parser.add_argument("--json", action="store_true", help="Print the reports and a summary as JSON.")
    parser.add_argument("--height", type=_positive_int, help="Training height; smaller clips are noted.")
    parser.add_argument("--width", type=_positive_int, help="Training width; smaller clips are noted.")
    parser.add_argument("--num-frames", type=_positive_int, help="Frames each clip needs at least.")
    parser.add_argument(
        "--caption-variant",
        choices=get_args(CaptionVariant),
        default="long",
        help="Which prompt of captions/*.json to use.",
    )
    parser.add_argument("--prompt-prefix", default="", help="Text put before every caption.")


def main(args: argparse.Namespace) -> int:
    root = Path(args.path)
    try:
        root = resolve_data(args.path)
        layout = detect_layout(root)
        items = list_items(root, args.caption_variant, args.prompt_prefix)
    except (DatasetError, ValueError) as exc:
        print(f"check-data: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a folder we may not list; a clip we cannot read is a report, not an error
        print(f"check-data: {exc.filename or root}: {exc.strerror or exc}; check its permissions.", file=sys.stderr)
        return 1
    if not items:  # still a full report under --json, so a program reading it needs no special case
        print(f"check-data: {root} ({layout.value} layout) holds no .mp4 clips; add clips first.", file=sys.stderr)
    reports = check_items(items, args.num_frames, args.height, args.width)
    bad = [r for r in reports if not r.usable]
    summary = {
        "path": str(root),
        "layout": layout.value,
        "clips": len(reports),
        "usable": len(reports) - len(bad),
        "not_usable": len(bad),
        "num_frames_checked": args.num_frames,
    }
    if args.json:
        entries = [{**asdict(r), "usable": r.usable} for r in reports]
        print(json.dumps({"items": entries, "summary": summary}, indent=2))
    elif reports:
        print(_table(reports, root))
        print()
        print(_summary_line(summary))
        for report in bad:
            print(f"  {relative_name(report.video, root)}: {report.problem}")
    return 1 if bad or not reports else 0


def _table(reports: list[ItemReport], root: Path) -> str:
    header = ("file", "frames", "fps", "size", "caption", "problem")
    rows = [header] + [
        (
            relative_name(r.video, root),
            "-" if r.frames is None else str(r.frames),
            "-" if r.fps is None else f"{r.fps:g}",
            "-" if r.width is None else f"{r.width}x{r.height}",
            _shorten(r.caption),
            r.problem or (f"ok ({r.note})" if r.note else "ok"),
        )
        for r in reports
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    right = {1, 2}  # numbers line up on the right
    lines = []
    for row in rows:
        cells = [cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join([*cells, row[-1]]))
    return "\n".join(lines)


def _summary_line(summary: dict) -> str:
    clips = f"{summary['clips']} clip" + ("" if summary["clips"] == 1 else "s")
    line = (
        f"{clips} in {summary['path']} ({summary['layout']} layout): "
        f"{summary['usable']} usable, {summary['not_usable']} not usable"
    )
    if summary["num_frames_checked"] is None:
        line += " (length not checked: pass --num-frames)"
    return line + ("." if not summary["not_usable"] else ":")


def _shorten(caption: str | None) -> str:
    if caption is None:
        return "-"
    flat = " ".join(caption.split())
    return flat if len(flat) <= CAPTION_WIDTH else flat[: CAPTION_WIDTH - 1] + "…"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number (got {text!r})") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {value})")
    return value
