"""`python -m trainer evaluate`: the base model and adapters scored on held-out clips.

Exit 0 with the scores printed (a table, or one JSON object with --json), 1 when the model or the data cannot
be used, 2 for a usage error (a bad value or a missing adapter).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from trainer.cli.generate import parse_adapter
from trainer.config import DEFAULT_HUB_MODEL


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="tiny", help=f'"tiny", a local pipeline folder, or a Hub id ({DEFAULT_HUB_MODEL})')
    parser.add_argument("--revision", default="", help="Hub revision (default diffusers/base/post-trained for the 2B)")
    parser.add_argument("--adapter", action="append", default=[], metavar="DIR[:SCALE]",
                        help="an adapter folder, optionally with a strength (default 1.0); repeat for several")
    parser.add_argument("--data", default="sample:held_out",
                        help='held-out clips: a dataset folder, or "sample:held_out" (the built-in robot split)')
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--seed", type=int, default=0, help="seeds the loss noise and the generation noise")
    parser.add_argument("--steps", type=int, default=12, help="denoising steps per generated clip")
    parser.add_argument("--guidance", type=float, default=1.0,
                        help="classifier-free guidance scale; 1.0 (the default) turns guidance off")
    parser.add_argument("--num-frames", type=int, default=17)
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--max-clips", type=int, default=0, help="score only the first N clips (0: all)")
    parser.add_argument("--sheet", type=Path, default=None, metavar="PNG",
                        help="also write a labelled image of the first clips: first frame, each variant, ground truth")
    parser.add_argument("--sheet-clips", type=int, default=2, help="clips on the --sheet image (default 2)")
    parser.add_argument("--no-guardrail", action="store_true",
                        help="run without NVIDIA's cosmos_guardrail: your decision under NVIDIA's Open Model License")  # fmt: skip


def main(args: argparse.Namespace) -> int:
    from trainer.run_folder import WEIGHTS_FILE
    from trainer.cosmos import ModelError
    from trainer.datasets import DatasetError
    from trainer.evaluate import EvalSettings, contact_sheet, evaluate, format_table
    from trainer.video import VideoError

    settings = EvalSettings(
        model=args.model, revision=args.revision, data=args.data, adapters=[parse_adapter(a) for a in args.adapter], seed=args.seed,
        steps=args.steps, guidance=args.guidance, num_frames=args.num_frames, height=args.height,
        width=args.width, max_clips=args.max_clips, guardrail=not args.no_guardrail,
    )  # fmt: skip
    problems = settings.problems()
    problems += [f"adapter: {a.path} has no {WEIGHTS_FILE}" for a in settings.adapters
                 if not (Path(a.path) / WEIGHTS_FILE).is_file()]  # fmt: skip
    if problems:
        print("evaluate: " + "; ".join(problems), file=sys.stderr)
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
