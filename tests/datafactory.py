"""Tiny synthetic clips and dataset folders for tests: deterministic, a few KB each, tens of ms to write."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from trainer.video import write_video


def moving_gradient(frames: int = 9, height: int = 32, width: int = 32) -> np.ndarray:
    """A smooth gradient sliding one step per frame: survives H.264 + yuv420p within a few levels, unlike noise."""
    y, x = np.mgrid[0:height, 0:width]
    t = np.arange(frames)[:, None, None]
    red = x[None] * 160 // max(width - 1, 1) + 5 * np.minimum(t, 18)  # stays below 255: no hard edge
    green = np.broadcast_to(y[None] * 255 // max(height - 1, 1), red.shape)
    blue = np.broadcast_to(np.uint8(128), red.shape)
    return np.stack([red, green, blue], axis=-1).astype(np.uint8)


def write_clip(path: Path, frames: int = 9, height: int = 32, width: int = 32, fps: float = 16) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, moving_gradient(frames, height, width), fps)
    return path


def write_corrupt_clip(path: Path) -> Path:
    """An .mp4 name over bytes no decoder accepts (what an interrupted download often leaves)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"not really a video " * 20)
    return path


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def canonical_dataset(root: Path, captions: dict[str, str | None], frames: int = 9) -> Path:
    """videos/<name>.mp4 + metas/<name>.txt; a None caption leaves the .txt out."""
    (root / "metas").mkdir(parents=True, exist_ok=True)
    for name, caption in captions.items():
        write_clip(root / "videos" / f"{name}.mp4", frames)
        if caption is not None:
            write_text(root / "metas" / f"{name}.txt", caption)
    return root


def captions_json_dataset(root: Path, prompts: dict[str, dict], frames: int = 9) -> Path:
    """videos/<name>.mp4 + captions/<name>.json holding the given object as is."""
    for name, data in prompts.items():
        write_clip(root / "videos" / f"{name}.mp4", frames)
        write_text(root / "captions" / f"{name}.json", json.dumps(data))
    return root
