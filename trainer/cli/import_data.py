"""`python -m trainer import-data SOURCE --to DIR`: copy a dataset into the canonical videos/ + metas/ layout.

SOURCE is a folder in any accepted layout, a .zip of one, or a Hub dataset id (owner/name); trainer.importing
does the work (import_lerobot.py for a LeRobot dataset folder). Exit 0 when every clip came with a caption, 1
when some did not (they are copied and named) or a download failed, 2 when SOURCE or DIR cannot be used as given.
With --json, stdout is one JSON object instead of the report (the studio reads it): the ImportReport's fields
and exit_code, or {"exit_code", "error"}.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import get_args

from trainer.cli import import_lerobot
from trainer.datasets import Layout
from trainer.spec.config import CaptionVariant


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SOURCE", help="Dataset folder, .zip of one, or Hub dataset id.")
    parser.add_argument("--to", metavar="DIR", required=True, help="Folder to write videos/ and metas/ into.")
    parser.add_argument(
        "--caption-variant",
        choices=get_args(CaptionVariant),
        default="long",
        help="Which prompt of captions/*.json to import.",
    )
    parser.add_argument("--prompt-prefix", default="", help="Text put before every caption.")
    parser.add_argument(
        "--max-unpacked-gb",
        type=float,
        default=None,
        metavar="GB",
        help="A .zip unpacking to more is refused while it is extracted (default: no bound but the ratio's: an "
        "archive unpacking to over 50 times its size is refused anyway).",
    )
    parser.add_argument(
        "--max-files", type=int, default=100_000, help="A .zip holding more files is refused before extracting."
    )
    import_lerobot.add_arguments(parser)
    parser.add_argument("--json", action="store_true", help="Print one JSON object instead of the report.")


def main(args: argparse.Namespace) -> int:
    from trainer.datasets import DatasetError
    from trainer.importing import ImportRefused, UnpackBounds, import_dataset

    if (lerobot_exit := import_lerobot.route(args)) is not None:
        return lerobot_exit
    dest = Path(args.to)
    try:
        max_bytes = None if args.max_unpacked_gb is None else int(args.max_unpacked_gb * 2**30)
        bounds = UnpackBounds(max_bytes, args.max_files)
        report = import_dataset(args.source, dest, args.caption_variant, args.prompt_prefix, bounds)
    except ImportRefused as exc:
        return _refused(str(exc), exc.exit_code, args.json)
    except DatasetError as exc:
        return _refused(str(exc), 2, args.json)
    except OSError as exc:  # disk full, no permission: what was written so far is complete files only
        return _refused(f"{exc.filename or dest}: {exc.strerror or exc}; free space or fix permissions.", 1, args.json)
    code = 0 if report.complete else 1
    if args.json:
        print(json.dumps({"exit_code": code, **dataclasses.asdict(report)}))
    else:
        _print_report(report, args.caption_variant)
    return code


def _refused(message: str, code: int, as_json: bool) -> int:
    print(f"import-data: {message}", file=sys.stderr)
    if as_json:
        print(json.dumps({"exit_code": code, "error": message}))
    return code


def _print_report(report, caption_variant: str) -> None:
    captions = f", {caption_variant} captions" if report.layout == Layout.CAPTIONS_JSON.value else ""
    print(
        f"Imported {_clips(report.clips)} from {report.source} ({report.layout} layout{captions}) into "
        f"{report.destination}: {report.copied} copied, {report.clips - report.copied} already there."
    )
    if report.missing_files:
        print(f"Not imported, the file is missing ({_clips(len(report.missing_files))}):")
        for path in report.missing_files:
            print(f"  {path}")
    if report.uncaptioned:
        print(f"Copied without a caption ({_clips(len(report.uncaptioned))}):")
        for line in report.uncaptioned:
            print(f"  {line}")
        print(f"Write {Path(report.destination) / 'metas'}/<name>.txt for each before training.")
    print(f"Next: python -m trainer check-data {report.destination}")


def _clips(n: int) -> str:
    return f"{n} clip" if n == 1 else f"{n} clips"
