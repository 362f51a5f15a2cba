"""`python -m trainer generate`: base model and adapters from the same noise, written side by side."""

from __future__ import annotations

import argparse
import json
import sys

from trainer.spec import generate_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--adapter",
        action="append",
        default=[],
        metavar="DIR[:SCALE]",
        help="an adapter folder, optionally with a strength (default 1.0); repeat for several",
    )
    cond = parser.add_mutually_exclusive_group(required=True)
    cond.add_argument("--image", help="condition on a first frame (1 latent frame): an image, or a video's first frame")
    cond.add_argument("--video", help="condition on a video's first clip: its first 5 frames (2 latent frames)")
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--out", required=True, help="output folder")
    generate_settings.add_arguments(parser)  # --model, --steps, --num-frames ... and --preset


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
    from trainer.precision import peak_memory_line

    request = GenerateRequest(
        prompt=args.prompt,
        out_dir=args.out,
        image=args.image or "",
        video=args.video or "",
        adapters=[parse_adapter(a) for a in args.adapter],
        **generate_settings.values_from_args(args),
    )
    problems = request.problems()
    if problems:
        print("generate: " + "; ".join(map(str, problems)), file=sys.stderr)
        return 2
    bars: dict[str, tqdm] = {}

    def progress(variant: str, done: int, total: int) -> None:
        bar = bars.setdefault(variant, tqdm(total=total, desc=variant, unit="step", leave=True))
        bar.update(done - bar.n)

    try:
        renderer = Renderer(
            request.model, request.revision or None, guardrail=request.guardrail, precision=request.precision
        )
        record = renderer.render(request, progress)
    except (ModelError, ValueError) as exc:
        print(f"generate: {exc}", file=sys.stderr)
        return 1
    for bar in bars.values():
        bar.close()
    line = f"generate: {record['precision']}; {peak_memory_line(renderer.device)}; memory mode {record['memory']}"
    print(line, file=sys.stderr)
    print(json.dumps({v["name"]: v["file"] for v in record["variants"]} | {"compare": "compare.mp4"}))
    return 0
