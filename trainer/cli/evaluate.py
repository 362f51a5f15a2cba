"""`python -m trainer evaluate`: the base model and adapters scored on held-out clips.

Exit 0 with the scores printed (a table, one JSON object with --json, or JSON-line events with --events), 1 when
the model or the data cannot be used, 2 for a usage error (a bad value or a missing adapter).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from trainer.cli.generate import parse_adapter
from trainer.spec import generate_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--adapter",
        action="append",
        default=[],
        metavar="DIR[:SCALE]",
        help="an adapter folder, optionally with a strength (default 1.0); repeat for several",
    )
    parser.add_argument(
        "--data",
        default="sample:held_out",
        help='held-out clips: a dataset folder, or "sample:held_out" (the built-in robot split)',
    )
    parser.add_argument(
        "--checkpoints",
        choices=("none", "all"),
        default="none",
        help='"all": each --adapter names a run (its folder, adapter/ or a checkpoint); score every complete '
        "checkpoint and the final adapter, and name the best step (lowest validation loss)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--max-clips", type=int, default=0, help="score only the first N clips (0: all)")
    parser.add_argument(
        "--sheet",
        type=Path,
        default=None,
        metavar="PNG",
        help="also write a labelled image of the first clips: first frame, each variant, ground truth",
    )
    parser.add_argument("--sheet-clips", type=int, default=2, help="clips on the --sheet image (default 2)")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="also write the first clip's comparison there (one mp4 per variant, compare.mp4, and "
        'compare.json with the scores under "evaluation")',
    )
    parser.add_argument(
        "--card",
        action="store_true",
        help='record the scores in each adapter\'s adapter_card.json (key "evaluation") and as its '
        "evaluation.json (which publish shows in the model card)",
    )
    parser.add_argument(
        "--events",
        action="store_true",
        help="print JSON lines instead: progress events, then one done event with the scores (or "
        "an error event); the schema is trainer.spec.run_folder.EVALUATE_EVENTS",
    )
    generate_settings.add_arguments(parser)  # --model, --steps, --seed (loss and generation noise) ... --preset


def main(args: argparse.Namespace) -> int:
    from trainer.evaluate_outputs import EventPrinter

    events = EventPrinter() if args.events else None

    def fail(message: str, code: int) -> int:
        if events:
            events.emit("error", message=message)
        print(f"evaluate: {message}", file=sys.stderr)
        return code

    try:
        return _evaluate(args, events, fail)
    except OSError as exc:  # an output folder or card that cannot be written
        return fail(f"{exc.filename or 'a file'}: {exc.strerror or exc}; check the path and free disk space.", 1)


def _evaluate(args: argparse.Namespace, events, fail) -> int:
    from trainer.cosmos import ModelError
    from trainer.datasets import DatasetError
    from trainer.evaluate import EvalSettings, contact_sheet, evaluate, format_table
    from trainer.evaluate_outputs import ComparisonWriter, record_in_cards
    from trainer.generate import Renderer
    from trainer.video import VideoError

    adapters, steps = [parse_adapter(a) for a in args.adapter], {}
    if args.checkpoints == "all":
        from trainer.checkpoint_sweep import run_folder, sweep
        from trainer.generate import AdapterChoice

        swept, runs = [], set()
        for choice in adapters:
            run = run_folder(choice.path)
            if run is None or not sweep(run):
                return fail(f"--checkpoints all: {choice.path} is not a run with checkpoints; give runs/RUN.", 2)
            if run.resolve() in runs:  # a run picked twice (its adapter and a checkpoint) is swept once
                continue
            runs.add(run.resolve())
            for step, folder in sweep(run):
                swept.append(AdapterChoice(str(folder), choice.scale))
                steps[swept[-1].name] = step
        adapters = swept
    settings = EvalSettings(
        data=args.data,
        adapters=adapters,
        max_clips=args.max_clips,
        **generate_settings.values_from_args(args),
    )
    problems = settings.problems()
    if problems:
        return fail("; ".join(map(str, problems)), 2)
    where = {"clip": 0, "clips": 0, "key": ""}

    def progress(done: int, total: int, key: str) -> None:
        where.update(clip=done + 1, clips=total, key=key)
        if not args.json and not events:
            print(f"  clip {done + 1}/{total} {key}", file=sys.stderr, flush=True)

    def step_progress(variant: str, step: int, steps: int) -> None:
        if events:
            events.emit("progress", **where, variant=variant, step=step, steps=steps)

    kept = []

    def keep(clip, frames) -> None:
        if len(kept) < args.sheet_clips:
            kept.append((clip, frames))

    try:
        renderer = Renderer(
            settings.model, settings.revision or None, guardrail=settings.guardrail, precision=settings.precision
        )
        writer = ComparisonWriter(renderer, args.out) if args.out else None
        result = evaluate(
            settings,
            renderer,
            progress=progress,
            on_clip=keep if args.sheet else None,
            on_rendered=writer,
            step_progress=step_progress,
        )
    except (ModelError, DatasetError, VideoError, ValueError) as exc:
        return fail(str(exc), 1)
    if steps:
        from trainer.checkpoint_sweep import curve

        result["checkpoints"] = curve(result, steps)
    if writer:
        writer.finish(result)
    if args.card:
        record_in_cards(settings.adapters, result)
    if args.sheet:
        from PIL import Image

        args.sheet.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(contact_sheet(kept)).save(args.sheet)
    if events:
        events.emit("done", result=result, out_dir=str(args.out) if args.out else None)
    else:
        print(json.dumps(result, indent=2) if args.json else format_table(result))
        if steps and not args.json:
            from trainer.checkpoint_sweep import format_curve

            print(format_curve(result["checkpoints"]))
    return 0
