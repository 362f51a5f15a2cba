"""`python -m trainer generate`: base model and adapters from the same noise, written side by side."""

from __future__ import annotations

import argparse
import json
import sys

from trainer.config import DEFAULT_HUB_MODEL


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="tiny", help=f'"tiny", a local pipeline folder, or a Hub id ({DEFAULT_HUB_MODEL})')
    parser.add_argument("--revision", default="", help="Hub revision (default diffusers/base/post-trained for the 2B)")
    parser.add_argument("--adapter", action="append", default=[], metavar="DIR[:SCALE]",
                        help="an adapter folder, optionally with a strength (default 1.0); repeat for several")
    cond = parser.add_mutually_exclusive_group(required=True)
    cond.add_argument("--image", help="initial frame: an image, or a video whose first frame is used")
    cond.add_argument("--video", help="initial clip: its last 5 frames condition the generation")
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--negative-prompt", default="")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=36)
    parser.add_argument("--guidance", type=float, default=7.0)
    parser.add_argument("--height", type=int, default=704)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--num-frames", type=int, default=93)
    parser.add_argument("--fps", type=int, default=16)
    parser.add_argument("--no-guardrail", action="store_true",
                        help="run without NVIDIA's cosmos_guardrail: your decision under NVIDIA's Open Model License")
    parser.add_argument("--out", required=True, help="output folder")  # fmt: skip


def parse_adapter(spec: str):
    from trainer.generate import AdapterChoice

    path, sep, scale = spec.rpartition(":")
    if sep and path and _is_number(scale):
        return AdapterChoice(path, float(scale))
    return AdapterChoice(spec, 1.0)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def main(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from trainer.cosmos import ModelError
    from trainer.generate import GenerateRequest, Renderer

    request = GenerateRequest(
        prompt=args.prompt, out_dir=args.out, image=args.image or "", video=args.video or "",
        adapters=[parse_adapter(a) for a in args.adapter], negative_prompt=args.negative_prompt, seed=args.seed,
        steps=args.steps, guidance=args.guidance, height=args.height, width=args.width,
        num_frames=args.num_frames, fps=args.fps,
    )  # fmt: skip
    problems = request.problems()
    if problems:
        print("generate: " + "; ".join(problems), file=sys.stderr)
        return 2
    bars: dict[str, tqdm] = {}

    def progress(variant: str, done: int, total: int) -> None:
        bar = bars.setdefault(variant, tqdm(total=total, desc=variant, unit="step", leave=True))
        bar.update(done - bar.n)

    try:
        renderer = Renderer(args.model, args.revision or None, guardrail=not args.no_guardrail)
        record = renderer.render(request, progress)
    except (ModelError, ValueError) as exc:
        print(f"generate: {exc}", file=sys.stderr)
        return 1
    for bar in bars.values():
        bar.close()
    print(json.dumps({v["name"]: v["file"] for v in record["variants"]} | {"compare": "compare.mp4"}))
    return 0
