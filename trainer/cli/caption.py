"""`python -m trainer caption DATA`: write the missing captions of a dataset with a vision-language model.

Exit 0 when every clip asked for got a caption (or none needed one), 1 when the model or the data cannot be used,
some clips got no caption, or the run was cancelled (SIGINT/SIGTERM: every file written is complete, and running
the command again continues where it stopped), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from trainer.caption_files import DEFAULT_TEMPLATE, DEFAULT_VLM, FRAMES_PER_CLIP, LENGTH_PLACEHOLDER


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", metavar="DATA", help="the dataset folder (canonical, captions/*.json or flat layout)")
    parser.add_argument(
        "--model",
        default=None,
        help="a Qwen2.5-VL-family model (Hub id or folder), or a Cosmos Predict 2.5 pipeline whose text encoder is "
        "used; default: nvidia/Cosmos-Predict2.5-2B's text encoder when it is in the local Hugging Face cache, "
        f"else {DEFAULT_VLM}",
    )
    parser.add_argument("--revision", default=None, help="the model's Hub revision (branch, tag or commit)")
    parser.add_argument(
        "--variants",
        default=None,
        metavar="LIST",
        help="comma-separated long,medium,short: several go to captions/<clip>.json; default: all three for a "
        "captions/*.json dataset, long (one .txt per clip) otherwise",
    )
    parser.add_argument("--overwrite", action="store_true", help="also replace captions the clips already have")
    parser.add_argument(
        "--template",
        type=Path,
        default=None,
        metavar="FILE",
        help=f"a text file replacing the prompt; {LENGTH_PLACEHOLDER} in it becomes each variant's length rule",
    )
    parser.add_argument(
        "--frames", type=int, default=FRAMES_PER_CLIP, help=f"frames shown per clip (default {FRAMES_PER_CLIP})"
    )
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=None,
        metavar="N",
        help="at most N tokens per caption (default: 320 long, 160 medium, 60 short)",
    )
    parser.add_argument(
        "--to",
        type=Path,
        default=None,
        metavar="DIR",
        help="write <clip>.txt / <clip>.json proposals into DIR instead of the dataset (to review before keeping)",
    )
    parser.add_argument(
        "--precision",
        choices=("auto", "bf16", "fp32"),
        default="auto",
        help="auto: bf16 where the device computes it natively (a GPU), fp32 elsewhere",
    )
    parser.add_argument(
        "--events",
        action="store_true",
        help="print JSON lines: start, one progress per clip, then done or error; the schema is "
        "trainer.spec.run_folder.CAPTION_EVENTS",
    )


class Cancelled(Exception):
    """SIGTERM or SIGINT arrived: stop after the file being written (writes are atomic)."""


def _cancel(signum, frame) -> None:
    raise Cancelled


def main(args: argparse.Namespace) -> int:
    from trainer.evaluate_outputs import EventPrinter
    from trainer.spec.run_folder import CAPTION_EVENTS

    events = EventPrinter(schema=CAPTION_EVENTS) if args.events else None

    def fail(message: str, code: int) -> int:
        if events:
            events.emit("error", message=message)
        print(f"caption: {message}", file=sys.stderr)
        return code

    before = {signum: signal.signal(signum, _cancel) for signum in (signal.SIGTERM, signal.SIGINT)}
    done = {"clip": 0, "clips": 0}
    try:
        return _caption(args, events, fail, done)
    except Cancelled:
        return fail(
            f"cancelled after {done['clip']} of {done['clips']} clips; every caption written is complete, "
            "run caption again to continue.",
            1,
        )
    except OSError as exc:
        return fail(f"{exc.filename or 'a file'}: {exc.strerror or exc}; check the folder and free disk space.", 1)
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


def _caption(args: argparse.Namespace, events, fail, done: dict) -> int:
    from trainer.caption_files import CaptionError, default_model, parse_variants, plan
    from trainer.captioning import caption_dataset
    from trainer.cosmos import ModelError
    from trainer.datasets import DatasetError

    template, problem = _template_and_problem(args)
    if problem:
        return fail(problem, 2)
    root = Path(args.data).expanduser()
    out_dir = args.to or root
    try:
        work = plan(root, parse_variants(args.variants), args.overwrite, args.to)
    except CaptionError as exc:
        return fail(str(exc), 2)
    except DatasetError as exc:
        return fail(str(exc), 1)
    model = args.model or default_model()
    done["clips"] = len(work.todo)
    if events:
        events.emit(
            "start",
            clips=len(work.todo),
            skipped=len(work.skipped),
            model=model,
            revision=args.revision,
            out_dir=str(out_dir),
        )
    if not work.todo:
        return _finish(events, 0, 0, out_dir, f"every clip of {root} has a caption; nothing to write.")
    try:
        captioner = _load(model, args)
    except (CaptionError, ModelError) as exc:
        return fail(str(exc), 1)
    progress = _progress(events, done)
    written, failed = caption_dataset(work, captioner, template, args.frames, out_dir, progress, args.max_new_tokens)
    skipped = len(work.skipped)
    line = f"{written} caption file{'s' * (written != 1)} written into {out_dir}, {skipped} clip{'s' * (skipped != 1)} skipped"
    return _finish(events, written, failed, out_dir, line + (f", {failed} failed." if failed else "."))


def _template_and_problem(args: argparse.Namespace) -> tuple[str, str | None]:
    """The prompt template, and the usage problem of the options (None when they are fine)."""
    from trainer.spec.embedded import is_sample

    if args.frames < 1:
        return "", f"--frames must be at least 1 (got {args.frames})."
    if args.max_new_tokens is not None and args.max_new_tokens < 1:
        return "", f"--max-new-tokens must be at least 1 (got {args.max_new_tokens})."
    if is_sample(args.data):
        return "", "the built-in sample is read-only and captioned already; caption a dataset folder."
    if args.template is None:
        return DEFAULT_TEMPLATE, None
    try:
        template = args.template.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return "", f"--template {args.template}: {getattr(exc, 'strerror', None) or exc}; give a UTF-8 text file."
    if not template.strip():
        return "", f"--template {args.template} is empty; write the instruction the model gets."
    return template, None


def _load(model: str, args: argparse.Namespace):
    """The Captioner; CaptionError (or ModelError for a download) says why it cannot be loaded."""
    from trainer.caption_files import CaptionError
    from trainer.captioning import Captioner, locate

    try:
        captioner = Captioner(locate(model, args.revision), args.precision)
    except CaptionError:
        raise
    except (OSError, ValueError) as exc:  # a folder transformers cannot read as a Qwen2.5-VL
        raise CaptionError(f"{model} could not be loaded as a Qwen2.5-VL model ({exc}); check --model.") from None
    print(f"caption: {model} on {captioner.device} ({str(captioner.dtype).removeprefix('torch.')})", file=sys.stderr)
    return captioner


def _progress(events, done: dict):
    """The per-clip callback: an event (with --events) and a line on stderr with the ETA."""

    def progress(**fields) -> None:
        done["clip"] = fields["clip"]
        if events:
            events.emit("progress", **fields)
        state = fields["problem"] or fields["path"]
        print(
            f"  clip {fields['clip']}/{fields['clips']} {fields['key']}: {state} "
            f"({fields['seconds']:.0f} s, about {fields['eta']:.0f} s left)",
            file=sys.stderr,
            flush=True,
        )

    return progress


def _finish(events, written: int, failed: int, out_dir: Path, line: str) -> int:
    if events:
        events.emit("done", written=written, failed=failed, out_dir=str(out_dir))
    print(f"caption: {line}", file=sys.stderr if events else sys.stdout)
    return 1 if failed else 0
