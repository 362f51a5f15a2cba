"""`python -m trainer make-sample-data OUT_DIR`: write a procedural sample dataset.

`--world robot` (default) writes the two-armed pick-and-place world with `train/` and `held_out/` splits;
`--world shapes` writes the bouncing-shapes world that pre-trains the tiny base model.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_CLIPS = {"robot": 48, "shapes": 256}
DEFAULT_HELD_OUT = 12


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out_dir", metavar="OUT_DIR", help="Folder to write; must be new or empty.")
    parser.add_argument("--world", choices=("robot", "shapes"), default="robot", help="Which world (default robot).")
    parser.add_argument("--clips", type=int, help="Training clips (default 48 for robot, 256 for shapes).")
    parser.add_argument("--held-out", type=int, help=f"Held-out clips, robot world only (default {DEFAULT_HELD_OUT}).")
    parser.add_argument("--size", type=int, default=64, help="Frame width and height, a multiple of 16 (default 64).")
    parser.add_argument("--num-frames", type=int, default=17, help="Frames per clip, 4k+1 and at least 9 (17 or 33).")
    parser.add_argument("--seed", type=int, default=0, help="Dataset seed; the same seed writes the same clips.")


def _usage_problems(args: argparse.Namespace, clips: int, held_out: int) -> list[str]:
    from trainer.tinyworld.drawing import clip_shape_problems

    problems = clip_shape_problems(args.size, args.num_frames, names=("--size", "--num-frames"))
    if args.world == "shapes" and args.held_out is not None:
        problems.append("--held-out applies only to --world robot; the shapes world has no held-out split.")
    if clips < 1:
        problems.append(f"--clips must be at least 1, got {clips}.")
    if held_out < 0:
        problems.append(f"--held-out must be 0 or more, got {held_out}.")
    out = Path(args.out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        problems.append(f"OUT_DIR {out} is not an empty folder; choose a new folder so no stale clips remain.")
    return problems


def main(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from trainer.tinyworld import sample_datasets

    clips = DEFAULT_CLIPS[args.world] if args.clips is None else args.clips
    held_out = DEFAULT_HELD_OUT if args.held_out is None else args.held_out
    problems = _usage_problems(args, clips, held_out)
    if problems:
        for problem in problems:
            print(f"make-sample-data: error: {problem}", file=sys.stderr)
        return 2
    total = clips + (held_out if args.world == "robot" else 0)
    shape = {"size": args.size, "num_frames": args.num_frames, "seed": args.seed}
    with tqdm(total=total, unit="clip", desc=f"{args.world} world") as progress:

        def advance(_key: str) -> None:
            progress.update()

        if args.world == "robot":
            sample_datasets.make_robot_dataset(args.out_dir, clips, held_out, on_clip=advance, **shape)
        else:
            sample_datasets.make_shapes_dataset(args.out_dir, clips, on_clip=advance, **shape)
    clip_shape = f"{args.size}x{args.size}, {args.num_frames} frames"
    print(f"Wrote {total} {args.world}-world clips ({clip_shape}) to {args.out_dir}.")
    return 0
