"""Names for the embedded defaults in a config: `model: "tiny"` and `data: "sample"` / `"sample:held_out"`.

The sample robot dataset is generated (deterministically) on first use into the cache, like the tiny model.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import shutil
import tempfile
from pathlib import Path

SAMPLE_DATA = "sample"
SAMPLE_SPLITS = ("train", "held_out")
SAMPLE_SETTINGS = {"train_clips": 48, "held_out_clips": 12, "size": 64, "num_frames": 17, "seed": 0}


def is_sample(data: str) -> bool:
    return data == SAMPLE_DATA or data.startswith(SAMPLE_DATA + ":")


def sample_root() -> Path:
    """The generated sample dataset (both splits + manifest.json); built once per generator version."""
    from trainer import sample_world
    from trainer.cosmos_paths import cache_root

    source = inspect.getsource(sample_world)
    digest = hashlib.sha256((source + json.dumps(SAMPLE_SETTINGS)).encode()).hexdigest()[:12]
    target = cache_root() / f"sample-robot-{digest}"
    if not (target / "manifest.json").exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".building-"))
        sample_world.make_robot_dataset(tmp, **SAMPLE_SETTINGS)
        try:
            tmp.rename(target)
        except OSError:  # a concurrent process built the identical dataset first
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_data(data: str) -> Path:
    """A dataset folder for the `data` field: "sample" (train split), "sample:held_out", or a path as given."""
    if not is_sample(data):
        return Path(data).expanduser()
    split = data.partition(":")[2] or "train"
    if split not in SAMPLE_SPLITS:
        raise ValueError(f"data: {data!r} names no sample split; use 'sample' or 'sample:held_out'.")
    return sample_root() / split
