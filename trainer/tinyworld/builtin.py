"""Names for the embedded defaults in a config: `model: "tiny"` and `data: "sample"` / `"sample:held_out"`.

The tiny base is committed (assets/tiny-base); the sample robot dataset is generated deterministically on first
use into the user cache. Torch-free: the studio resolves these names too.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from pathlib import Path

TINY_MODEL = "tiny"
SAMPLE_DATA = "sample"
SAMPLE_SPLITS = ("train", "held_out")
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


def is_sample(data: str) -> bool:
    return data == SAMPLE_DATA or data.startswith(SAMPLE_DATA + ":")


def sample_root() -> Path:
    """The generated sample dataset (both splits + manifest.json); built once per generator version."""
    from trainer.tinyworld import drawing, robot_world, sample_datasets
    from trainer.user_cache import build_once, cache_root

    # A change to how the world is drawn or written gets a fresh folder, never a stale one.
    source = "".join(inspect.getsource(module) for module in (drawing, robot_world, sample_datasets))
    digest = hashlib.sha256((source + json.dumps(SAMPLE_SETTINGS)).encode()).hexdigest()[:12]
    return build_once(
        cache_root() / f"sample-robot-{digest}",
        "manifest.json",
        lambda folder: sample_datasets.make_robot_dataset(folder, **SAMPLE_SETTINGS),
    )


def resolve_data(data: str) -> Path:
    """A dataset folder for the `data` field: "sample" (train split), "sample:held_out", or a path as given."""
    if not is_sample(data):
        return Path(data).expanduser()
    split = data.partition(":")[2] or "train"
    if split not in SAMPLE_SPLITS:
        raise ValueError(f"data: {data!r} names no sample split; use 'sample' or 'sample:held_out'.")
    return sample_root() / split
