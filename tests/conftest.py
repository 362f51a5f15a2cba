"""Shared fixtures: the tiny pipeline (built once per session into a temporary cache) and small datasets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Builds of the tiny model and latent caches go to a per-session folder, never the user's home."""
    cache = tmp_path_factory.mktemp("cache")
    os.environ["COSMOS_STUDIO_CACHE"] = str(cache)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    yield cache


def write_clip_dataset(root: Path, clips: int = 4, frames: int = 13, size: int = 64, seed: int = 0) -> Path:
    """Canonical-layout clips of a coloured box sliding across a dark background, each with a caption."""
    from trainer.video import write_video

    rng = np.random.default_rng(seed)
    (root / "videos").mkdir(parents=True, exist_ok=True)
    (root / "metas").mkdir(parents=True, exist_ok=True)
    colours = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (50, 80, 230), "yellow": (230, 220, 40)}
    for i in range(clips):
        name, rgb = list(colours.items())[i % len(colours)]
        video = np.full((frames, size, size, 3), 25, np.uint8)
        y, x = rng.integers(4, size // 2, size=2)
        for t in range(frames):
            video[t, y + t : y + t + 12, x : x + 12] = rgb
        write_video(root / "videos" / f"clip{i:02d}.mp4", video, 8)
        (root / "metas" / f"clip{i:02d}.txt").write_text(f"A {name} box slides down.")
    return root


@pytest.fixture(scope="session")
def clip_dataset(tmp_path_factory) -> Path:
    return write_clip_dataset(tmp_path_factory.mktemp("clips"))


def tiny_config(data: Path, out: Path, **overrides) -> dict:
    """A config that trains the tiny model in a few seconds."""
    cfg = {
        "data": str(data),
        "output_dir": str(out),
        "name": "run",
        "rank": 4,
        "alpha": 4.0,
        "learning_rate": 1e-3,
        "max_steps": 3,
        "height": 64,
        "width": 64,
        "num_frames": 9,
        "batch_size": 1,
        "mixed_precision": "no",
        "gradient_checkpointing": False,
        "checkpoint_every": 0,
        "warmup_steps": 1,
        "cache": "off",
    }
    cfg.update(overrides)
    return cfg


def write_config(path: Path, cfg: dict) -> Path:
    path.write_text(json.dumps(cfg))
    return path


def run_trainer(*args: str, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m trainer ARGS` in a child process, from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "trainer", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def read_events(run_dir: Path) -> list[dict]:
    from trainer.spec.run_folder import read_events as read

    return read(run_dir)


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory) -> Path:
    """A tiny random Qwen2.5-VL folder (tests/vlmfactory.py), built once per session."""
    from tests.vlmfactory import build_tiny_vlm

    return build_tiny_vlm(tmp_path_factory.mktemp("tiny-vlm"))
