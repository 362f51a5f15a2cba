"""The tiny world as a plug-in: what the names `model: "tiny"` and `data: "sample"` (trainer.spec.embedded) are
built from. The core never imports this module; trainer.spec.embedded loads it by name when a name is resolved.

The tiny base is committed (assets/tiny-base); the sample robot dataset is generated deterministically on first
use into the user cache. Torch-free: the studio resolves these names too.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from pathlib import Path

import numpy as np

SAMPLE_SETTINGS = {"train_clips": 48, "held_out_clips": 12, "size": 64, "num_frames": 17, "seed": 0}
TINY_BASE_DIR = Path(__file__).resolve().parent / "assets" / "tiny-base"


def tiny_model_dir() -> Path:
    """The embedded tiny pipeline: the pretrained base committed with the code (see its PRETRAINING.md)."""
    if not (TINY_BASE_DIR / "model_index.json").exists():
        raise FileNotFoundError(
            f"the embedded tiny model is missing from {TINY_BASE_DIR.name}/ of the installed code; reinstall the "
            "project (or rebuild it: python -m trainer pretrain-tiny OUT_DIR)."
        )
    return TINY_BASE_DIR


def sample_root() -> Path:
    """The generated sample dataset (both splits + manifest.json); built once per generator version."""
    from trainer.spec.user_cache import build_once, cache_root
    from trainer.tinyworld import drawing, robot_world, sample_datasets

    # A change to how the world is drawn or written gets a fresh folder, never a stale one.
    source = "".join(inspect.getsource(module) for module in (drawing, robot_world, sample_datasets))
    digest = hashlib.sha256((source + json.dumps(SAMPLE_SETTINGS)).encode()).hexdigest()[:12]
    return build_once(
        cache_root() / f"sample-robot-{digest}",
        "manifest.json",
        lambda folder: sample_datasets.make_robot_dataset(folder, **SAMPLE_SETTINGS),
    )


def which_hand_moved(frames: np.ndarray) -> str:
    """Which arm moved in a robot-world video: "left", "right" or "unclear" (hand_scorer)."""
    from trainer.tinyworld.hand_scorer import which_hand_moved as scorer

    return scorer(frames)
