"""`python -m trainer evaluate`: the base model and adapters scored on held-out clips.

Exit 0 with the scores printed (a table, or one JSON object with --json), 1 when the model or the data cannot
be used, 2 for a usage error (a bad value or a missing adapter).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from trainer import generate_settings
from trainer.cli.generate import parse_adapter


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--adapter", action="append", default=[], metavar="DIR[:SCALE]",
                        help="an adapter folder, optionally with a strength (default 1.0); repeat for several")
    parser.add_argument("--data", default="sample:held_out",
                        help='held-out clips: a dataset folder, or "sample:held_out" (the built-in robot split)')
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--max-clips", type=int, default=0, help="score only the first N clips (0: all)")
    parser.add_argument("--sheet", type=Path, default=None, metavar="PNG",
                        help="also write a labelled image of the first clips: first frame, each variant, ground truth")
    parser.add_argument("--sheet-clips", type=int, default=2, help="clips on the --sheet image (default 2)")
    generate_settings.add_arguments(parser)  # --model, --steps, --seed (loss and generation noise) ... --preset


def main(args: argparse.Namespace) -> int:
    from trainer.cosmos import ModelError
    from trainer.datasets import DatasetError
    from trainer.evaluate import EvalSettings, contact_sheet, evaluate, format_table
    from trainer.video import VideoError

    settings = EvalSettings(data=args.data, adapters=[parse_adapter(a) for a in args.adapter],
                            max_clips=args.max_clips, **generate_settings.values_from_args(args))  # fmt: skip
    problems = settings.problems()
    if problems:
        print("evaluate: " + "; ".join(map(str, problems)), file=sys.stderr)
        return 2

    def progress(done: int, total: int, key: str) -> None:
        if not args.json:
            print(f"  clip {done + 1}/{total} {key}", file=sys.stderr, flush=True)

    kept = []

    def keep(clip, frames) -> None:
        if len(kept) < args.sheet_clips:
            kept.append((clip, frames))

    try:
        result = evaluate(settings, progress=progress, on_clip=keep if args.sheet else None)
    except (ModelError, DatasetError, VideoError, ValueError) as exc:
        print(f"evaluate: {exc}", file=sys.stderr)
        return 1
    if args.sheet:
        from PIL import Image

        args.sheet.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(contact_sheet(kept)).save(args.sheet)
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0
