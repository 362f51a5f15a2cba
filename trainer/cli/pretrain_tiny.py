"""`python -m trainer pretrain-tiny OUT_DIR`: pre-train the embedded tiny base on generic worlds.

How trainer/tinyworld/assets/tiny-base/ was made; its PRETRAINING.md records the exact command and numbers.
Every PretrainSettings field is an option (`--vae-world strokes`, `--device cuda`, `--fit-seconds 300`, ...).
`--rescore` scores a base pre-trained with `--no-score` and completes its PRETRAINING.md.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from dataclasses import fields
from pathlib import Path

SKIPPED = {"conditional_frames"}  # the recipe's, not a knob


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from trainer.pretrain_tiny.settings import PretrainSettings

    parser.add_argument("out_dir", type=Path, help="folder to write the pipeline to (must be empty or absent)")
    for field in fields(PretrainSettings):
        if field.name in SKIPPED:
            continue
        flag = f"--{field.name.replace('_', '-')}"
        if field.type == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=field.default)
        else:
            kind = {"int": int, "float": float, "str": str}[field.type]
            parser.add_argument(flag, type=kind, default=field.default)
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="where held-out clips and the trained VAE are kept (temp); a rerun with the same VAE "
        "settings and work dir reuses the VAE",
    )
    parser.add_argument("--rescore", action="store_true", help="score the base already in OUT_DIR")


def main(args: argparse.Namespace) -> int:
    from trainer.pretrain_tiny.pretrain import pretrain
    from trainer.pretrain_tiny.scoring import rescore
    from trainer.pretrain_tiny.settings import RESERVED_ROBOT_SEEDS, VAE_WORLDS, PretrainSettings

    if args.vae_world not in VAE_WORLDS:
        print(f"pretrain-tiny: --vae-world must be one of {', '.join(VAE_WORLDS)}.", file=sys.stderr)
        return 2
    if args.vae_world == "robot" and args.vae_seed in RESERVED_ROBOT_SEEDS:
        print(
            f"pretrain-tiny: --vae-seed {args.vae_seed} is reserved: 0 makes the sample dataset's clips, 1 the "
            "probe's; choose another seed.",
            file=sys.stderr,
        )
        return 2
    if args.rescore and not (args.out_dir / "pretraining.json").is_file():
        print(f"pretrain-tiny: {args.out_dir} holds no pretraining.json to rescore.", file=sys.stderr)
        return 2
    if not args.rescore and args.out_dir.exists() and any(args.out_dir.iterdir()):
        print(f"pretrain-tiny: {args.out_dir} is not empty; choose a new folder.", file=sys.stderr)
        return 2
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="pretrain-tiny-"))
    try:
        if args.rescore:
            rescore(args.out_dir, work)
        else:
            names = [f.name for f in fields(PretrainSettings) if f.name not in SKIPPED]
            pretrain(args.out_dir, PretrainSettings(**{name: getattr(args, name) for name in names}), work)
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0
