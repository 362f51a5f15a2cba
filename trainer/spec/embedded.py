"""The embedded defaults by name: `model: "tiny"` and `data: "sample"` / `"sample:held_out"`.

Every module resolves these names here. How they are built (the committed tiny base, the sample robot world
generated on first use into the user cache, the arm scorer of that world) is known only to the tiny world's
package, which this module loads by its name, `EMBEDDED_WORLD`, when a name is resolved: the tiny world is a
plug-in above the core, never a static import of it. Torch-free: the studio resolves these names too.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

TINY_MODEL = "tiny"
SAMPLE_DATA = "sample"
SAMPLE_SPLITS = ("train", "held_out")
EMBEDDED_WORLD = "trainer.tinyworld.builtin"  # the plug-in: tiny_model_dir(), sample_root(), which_hand_moved()


def _world() -> ModuleType:
    return importlib.import_module(EMBEDDED_WORLD)


def tiny_model_dir() -> Path:
    """The folder `model: "tiny"` loads: the pretrained tiny base committed with the code."""
    return _world().tiny_model_dir()


def is_sample(data: str) -> bool:
    return data == SAMPLE_DATA or data.startswith(SAMPLE_DATA + ":")


def sample_root() -> Path:
    """The generated sample dataset (both splits + manifest.json); built once per generator version."""
    return _world().sample_root()


def resolve_data(data: str) -> Path:
    """A dataset folder for the `data` field: "sample" (train split), "sample:held_out", or a path as given."""
    if not is_sample(data):
        return Path(data).expanduser()
    split = data.partition(":")[2] or "train"
    if split not in SAMPLE_SPLITS:
        raise ValueError(f"data: {data!r} names no sample split; use 'sample' or 'sample:held_out'.")
    return sample_root() / split


def which_hand_moved(frames: np.ndarray) -> str:
    """Which arm moved in a video of the sample world (uint8 [F, H, W, 3]): "left", "right" or "unclear";
    evaluate's instruction-following score for clips whose caption names an arm."""
    return _world().which_hand_moved(frames)
