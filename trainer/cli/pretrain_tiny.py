"""`python -m trainer pretrain-tiny OUT_DIR`: pre-train the embedded tiny base on the shapes world (minutes on CPU).

How trainer/tinyworld/assets/tiny-base/ was made; its PRETRAINING.md records the exact command and numbers.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

SETTINGS = ("clips", "held_out_clips", "seed", "vae_image_steps", "vae_video_steps", "dit_steps", "threads")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from trainer.tinyworld.pretrain import PretrainSettings

    defaults = PretrainSettings()
    parser.add_argument("out_dir", type=Path, help="folder to write the pipeline to (must be empty or absent)")
    for name in SETTINGS:
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name))
    parser.add_argument("--work-dir", type=Path, default=None, help="where the shapes clips are written (temp)")


def main(args: argparse.Namespace) -> int:
    from trainer.tinyworld.pretrain import PretrainSettings, pretrain

    if args.out_dir.exists() and any(args.out_dir.iterdir()):
        print(f"pretrain-tiny: {args.out_dir} is not empty; choose a new folder.", file=sys.stderr)
        return 2
    settings = PretrainSettings(**{name: getattr(args, name) for name in SETTINGS})
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="pretrain-tiny-"))
    try:
        pretrain(args.out_dir, settings, work)
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0
