"""`python -m trainer build-tiny OUT_DIR [--random]`: the embedded tiny pipeline as a plain diffusers folder.

Without --random it copies the pretrained tiny base that `model: "tiny"` loads (so plain diffusers can load it
from a folder); with --random it builds the same architecture with untrained, seeded random weights.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out_dir", type=Path, help="folder to write (created; must be empty or absent)")
    parser.add_argument(
        "--random",
        action="store_true",
        help="untrained random weights of the same architecture instead of the pretrained base",
    )


def main(args: argparse.Namespace) -> int:
    if args.out_dir.exists() and any(args.out_dir.iterdir()):
        print(
            f"build-tiny: {args.out_dir} is not empty; choose a new folder so nothing is overwritten.", file=sys.stderr
        )
        return 2
    t0 = time.perf_counter()
    if args.random:
        from trainer.tinyworld.model import build_tiny

        build_tiny(args.out_dir)
        what = "tiny Cosmos Predict 2.5 pipeline with random weights"
    else:
        from trainer.spec.embedded import tiny_model_dir

        shutil.copytree(tiny_model_dir(), args.out_dir, dirs_exist_ok=True)
        what = "embedded tiny Cosmos Predict 2.5 pipeline (pretrained)"
    print(f"{what} written to {args.out_dir} in {time.perf_counter() - t0:.1f} s")
    return 0
