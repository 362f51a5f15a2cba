"""Writing the sample worlds as datasets: DIR/videos/<key>.mp4 + DIR/metas/<key>.txt, a manifest and a README.

`make_robot_dataset` writes the sample fine-tuning dataset (train and held_out splits), `make_shapes_dataset`
the tiny base's pre-training world. The same arguments always give the same bytes.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np

from trainer.tinyworld.drawing import FPS, check_clip_shape
from trainer.tinyworld.robot_world import OBJECT_KINDS, RobotClip, render_robot_clip, sample_robot_clip
from trainer.tinyworld.shapes_world import render_shapes_clip, sample_shapes_clip, shapes_caption

VIDEO_CRF = 10  # near-lossless H.264 (0 would need the 4:4:4 profile that browsers cannot play)
SEEDS_PER_DATASET_SEED, HELD_OUT_SEED_OFFSET = 1_000_000, 500_000  # clip seeds of two splits never collide


def _write_mp4(path: Path, frames: np.ndarray, fps: int) -> None:
    """Private H.264 writer until trainer.video.write_video exists (then use that one)."""
    import imageio_ffmpeg  # imported here: rendering frames needs no ffmpeg

    height, width = frames.shape[1:3]
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (width, height),
        fps=fps,
        codec="libx264",
        pix_fmt_out="yuv420p",
        quality=None,
        macro_block_size=1,
        output_params=["-crf", str(VIDEO_CRF)],  # block size 1: 64x64 stays 64x64
    )
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()


def _write_clip(folder: Path, key: str, frames: np.ndarray, caption: str) -> None:
    (folder / "videos").mkdir(parents=True, exist_ok=True)
    (folder / "metas").mkdir(parents=True, exist_ok=True)
    _write_mp4(folder / "videos" / f"{key}.mp4", frames, FPS)
    (folder / "metas" / f"{key}.txt").write_text(caption + "\n", encoding="utf-8")


def clip_seed(seed: int, index: int, held_out: bool = False) -> int:
    return seed * SEEDS_PER_DATASET_SEED + (HELD_OUT_SEED_OFFSET if held_out else 0) + index


def _robot_entry(key: str, clip: RobotClip) -> dict:
    kind = OBJECT_KINDS[clip.target.kind]
    return {
        "key": key,
        "seed": clip.seed,
        "caption": clip.caption,
        "object": clip.target.kind,
        "colour": kind.colour,
        "shape": kind.shape,
        "hand": clip.hand,
        "band": clip.band,
        "object_position": list(clip.target.position),
        "bowl_position": list(clip.bowl),
        "distractors": [
            {"object": o.kind, "colour": OBJECT_KINDS[o.kind].colour, "position": list(o.position)}
            for o in clip.objects[1:]
        ],
    }


def _check_counts(**counts: int) -> None:
    for name, count in counts.items():
        if not 0 <= count < HELD_OUT_SEED_OFFSET:
            raise ValueError(f"{name} must be between 0 and {HELD_OUT_SEED_OFFSET - 1}, got {count}.")


def make_robot_dataset(
    out_dir: str | Path,
    train_clips: int = 48,
    held_out_clips: int = 12,
    size: int = 64,
    num_frames: int = 17,
    seed: int = 0,
    on_clip: Callable[[str], None] | None = None,
) -> dict:
    """Write OUT/train and OUT/held_out (canonical layout), OUT/manifest.json and OUT/README.md."""
    check_clip_shape(size, num_frames)
    _check_counts(train_clips=train_clips, held_out_clips=held_out_clips)
    out = Path(out_dir)
    manifest = {"world": "robot", "seed": seed, "size": size, "num_frames": num_frames, "fps": FPS, "splits": {}}
    for split, count in (("train", train_clips), ("held_out", held_out_clips)):
        entries = []
        for index in range(count):
            clip = sample_robot_clip(clip_seed(seed, index, held_out=split == "held_out"), size, num_frames)
            key = f"{split}_{index:04d}"
            _write_clip(out / split, key, render_robot_clip(clip), clip.caption)
            entries.append(_robot_entry(key, clip))
            if on_clip:
                on_clip(key)
        manifest["splits"][split] = entries
    _write_manifest_and_readme(out, manifest, ROBOT_README)
    return manifest


def make_shapes_dataset(
    out_dir: str | Path,
    clips: int = 256,
    size: int = 64,
    num_frames: int = 17,
    seed: int = 0,
    on_clip: Callable[[str], None] | None = None,
) -> dict:
    """Write OUT/videos + OUT/metas (canonical layout), OUT/manifest.json and OUT/README.md."""
    check_clip_shape(size, num_frames)
    _check_counts(clips=clips)
    out = Path(out_dir)
    entries = []
    for index in range(clips):
        clip = sample_shapes_clip(clip_seed(seed, index), size, num_frames)
        key = f"shapes_{index:04d}"
        _write_clip(out, key, render_shapes_clip(clip), shapes_caption(clip))
        entries.append({"key": key, "caption": shapes_caption(clip), **asdict(clip)})
        if on_clip:
            on_clip(key)
    manifest = {"world": "shapes", "seed": seed, "size": size, "num_frames": num_frames, "fps": FPS, "clips": entries}
    _write_manifest_and_readme(out, manifest, SHAPES_README)
    return manifest


def _write_manifest_and_readme(out: Path, manifest: dict, readme: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    (out / "README.md").write_text(readme.format(**manifest), encoding="utf-8")


ROBOT_README = """# Sample robot world

A fixed top-down camera over a slate table. A two-armed robot (magenta left arm from the left edge, cyan right
arm from the right edge, each ending in a two-finger gripper) and a white bowl. Each clip is one pick-and-place:
the named arm reaches from rest to one object, closes its gripper, carries the object into the bowl, lets go and
returns to rest; the other arm stays still. Objects: green cucumber (ellipse), red apple (circle), yellow banana
(crescent), blue cube (square), orange carrot (wedge), with 1-3 of them as distractors. Half the targets lie in
the middle band, where either arm could take them: only the prompt says which arm.

- `train/` and `held_out/`: canonical layout, `videos/<key>.mp4` ({size}x{size}, {num_frames} frames, {fps} fps)
  and `metas/<key>.txt` (the prompt).
- `manifest.json`: per clip the seed, caption, object, colour, hand, band and positions (frame units 0..1, x to
  the right, y down; multiply by the size for pixels). The two splits never share a seed.
- Re-render a clip with `trainer.tinyworld.robot_world.render_robot_clip(sample_robot_clip(seed, size, num_frames))`;
  score which arm moved in any video of this world with `trainer.tinyworld.hand_scorer.which_hand_moved(frames)`.

Made by `python -m trainer make-sample-data --world robot --seed {seed}`.
"""

SHAPES_README = """# Shapes world

1-3 circles, squares and triangles of distinct colours on a dark plain or gradient background, moving at constant
velocity, bouncing off the walls, some growing or shrinking. It pre-trains the tiny base model and on purpose
holds no robot, table or bowl. Canonical layout: `videos/<key>.mp4` ({size}x{size}, {num_frames} frames,
{fps} fps) and `metas/<key>.txt`; `manifest.json` holds every clip's parameters.

Made by `python -m trainer make-sample-data --world shapes --seed {seed}`.
"""
