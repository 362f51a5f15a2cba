"""`python -m trainer build-tiny OUT_DIR`: the embedded tiny pipeline, written in diffusers layout."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out_dir", type=Path, help="folder to write (created; must be empty or absent)")


def main(args: argparse.Namespace) -> int:
    from trainer.tinyworld.model import build_tiny

    if args.out_dir.exists() and any(args.out_dir.iterdir()):
        print(f"build-tiny: {args.out_dir} is not empty; choose a new folder so nothing is overwritten.",
              file=sys.stderr)  # fmt: skip
        return 2
    t0 = time.perf_counter()
    build_tiny(args.out_dir)
    print(f"tiny Cosmos Predict 2.5 pipeline written to {args.out_dir} in {time.perf_counter() - t0:.1f} s")
    return 0
