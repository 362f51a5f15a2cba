"""The LeRobot part of `python -m trainer import-data`: a local LeRobot dataset folder (one with meta/info.json)
becomes num_frames-frame clips of one camera, captioned with the task text, written to DIR/videos + DIR/metas;
held-out episodes go to DIR/held_out/, and DIR/provenance.json records where every clip came from.

Exit 0 when every episode long enough was imported, 1 when some could not be (a missing or unreadable video,
a task without text: each is named), 2 when SOURCE, DIR or an option cannot be used as given.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from trainer.lerobot import HELD_OUT_DIR, PROVENANCE_FILE, LeRobotError, import_dataset, is_lerobot
from trainer.spec.video_shape import RECIPE_SIZE

DEFAULT_NUM_FRAMES = RECIPE_SIZE.num_frames  # the recipe's clip length
OPTIONS = ("camera", "num_frames", "stride", "held_out_episodes")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("LeRobot datasets (a folder with meta/info.json)")
    group.add_argument(
        "--camera",
        help="Video feature to import, in full or its last part: "
        "observation.images.top or top (default: the first camera).",
    )
    group.add_argument(
        "--num-frames",
        type=int,
        metavar="N",
        help=f"Frames per clip (default {DEFAULT_NUM_FRAMES}); train with this num_frames or fewer.",
    )
    group.add_argument("--stride", type=int, metavar="N", help="Frames between clip starts (default: --num-frames).")
    group.add_argument(
        "--held-out-episodes",
        type=_amount,
        metavar="N",
        help=f"Whole episodes written to DIR/{HELD_OUT_DIR}/ for evaluate: a count, or a fraction below 1 (default 0).",
    )


def route(args: argparse.Namespace) -> int | None:
    """Import SOURCE when it is a LeRobot folder; None to let import-data handle any other source."""
    if is_lerobot(args.source):
        return main(args)
    given = [f"--{name.replace('_', '-')}" for name in OPTIONS if getattr(args, name) is not None]
    if given:
        one = len(given) == 1
        fix = (
            f"leave {'it' if one else 'them'} out"
            if Path(args.source).exists()
            else f"download it first: hf download {args.source} --repo-type dataset --local-dir FOLDER"
        )
        return _refused(
            args,
            f"{' '.join(given)} {'applies' if one else 'apply'} only to a LeRobot dataset folder "
            f"(one with meta/info.json), and {args.source} is not one; {fix}.",
            2,
        )
    return None


def main(args: argparse.Namespace) -> int:
    dest = Path(args.to)
    try:
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise LeRobotError(f"{dest} is not an empty folder; import a LeRobot dataset into a new one.")
        num_frames = DEFAULT_NUM_FRAMES if args.num_frames is None else args.num_frames
        summary = import_dataset(
            args.source, dest, args.camera, num_frames, args.stride, args.held_out_episodes or 0, args.prompt_prefix
        )
    except LeRobotError as exc:
        return _refused(args, str(exc), exc.exit_code)
    except OSError as exc:  # disk full, no permission: nothing is left in DIR (clips are written beside it first)
        return _refused(args, f"{exc.filename or dest}: {exc.strerror or exc}; free space or fix permissions.", 1)
    lines = _report(args, summary, dest)
    code = 1 if summary.failed else 0
    # --json (what the studio reads): the report's first line and the others as details, one JSON object.
    print(
        json.dumps({"exit_code": code, "message": lines[0], "details": lines[1:]})
        if getattr(args, "json", False)
        else "\n".join(lines)
    )
    return code


def _refused(args: argparse.Namespace, message: str, code: int) -> int:
    print(f"import-data: {message}", file=sys.stderr)
    if getattr(args, "json", False):
        print(json.dumps({"exit_code": code, "error": message}))
    return code


def _report(args: argparse.Namespace, summary, dest: Path) -> list[str]:
    source, clips, episodes = summary.source, summary.clips, summary.episodes
    lines = [
        f"Imported {_count(clips['train'], 'clip')} from {_count(len(episodes['train']), 'episode')} of "
        f"{args.source} (LeRobot {source.version}, camera {summary.camera}, {summary.num_frames} frames, "
        f"stride {summary.stride}) into {dest}"
        + (
            f"; {_count(clips[HELD_OUT_DIR], 'clip')} from {_count(len(episodes[HELD_OUT_DIR]), 'held-out episode')}"
            f" into {dest / HELD_OUT_DIR}."
            if clips[HELD_OUT_DIR]
            else "."
        )
    ]
    for title, entries in (
        ("Not imported, shorter than --num-frames", summary.skipped),
        ("Not imported, the dataset needs fixing", summary.failed),
    ):
        if entries:
            lines.append(f"{title} ({_count(len(entries), 'episode')}):")
            lines += [f"  episode {episode}: {why}" for episode, why in entries]
    lines.append(f"Provenance: {dest / PROVENANCE_FILE}. Next: python -m trainer check-data {dest}")
    return lines


def _amount(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value < 0 or (value >= 1 and not value.is_integer()):
        raise argparse.ArgumentTypeError(f"{text!r} is neither a whole number of episodes nor a fraction below 1")
    return value


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
