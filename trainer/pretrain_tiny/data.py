"""The pre-training worlds in memory: the shapes clips (with captions), the strokes clips and robot clips'
frames (no captions), rendered by several processes when asked. In memory, not as mp4 files: no H.264 round trip, and no ffmpeg needed."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch

from trainer.tinyworld.robot_world import render_robot_clip, sample_robot_clip
from trainer.tinyworld.sample_datasets import clip_seed
from trainer.tinyworld.shapes_world import render_shapes_clip, sample_shapes_clip, shapes_caption
from trainer.tinyworld.strokes_world import render_strokes_clip

SIZE, NUM_FRAMES = 64, 17  # the sample robot dataset's clip shape (trainer.tinyworld.builtin.SAMPLE_SETTINGS)


def _shapes_clip(seed: int) -> tuple[np.ndarray, str]:
    clip = sample_shapes_clip(seed, SIZE, NUM_FRAMES)
    return render_shapes_clip(clip), shapes_caption(clip)


def _render(function, seeds: list[int], workers: int) -> list:
    if workers <= 1:
        return [function(seed) for seed in seeds]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(function, seeds, chunksize=32))


def shapes_world(clips: int, seed: int, workers: int = 1) -> tuple[torch.Tensor, list[str]]:
    """The clips `make_shapes_dataset(clips=clips, seed=seed)` writes, rendered in memory (no H.264 round trip):
    uint8 [N, F, H, W, 3] and one caption per clip."""
    rendered = _render(_shapes_clip, [clip_seed(seed, i) for i in range(clips)], workers)
    return torch.from_numpy(np.stack([frames for frames, _ in rendered])), [caption for _, caption in rendered]


def strokes_world(clips: int, seed: int, workers: int = 1) -> torch.Tensor:
    rendered = _render(render_strokes_clip, [clip_seed(seed, i) for i in range(clips)], workers)
    return torch.from_numpy(np.stack(rendered))


def _robot_clip(seed: int) -> np.ndarray:
    return render_robot_clip(sample_robot_clip(seed, SIZE, NUM_FRAMES))


def robot_frames(clips: int, seed: int, workers: int = 1) -> torch.Tensor:
    """The frames of the training split of robot dataset seed `seed`, uint8 [N, F, H, W, 3]; no captions."""
    return torch.from_numpy(np.stack(_render(_robot_clip, [clip_seed(seed, i) for i in range(clips)], workers)))


def _robot_clip_without_arm(seed: int) -> tuple[np.ndarray, str]:
    clip = sample_robot_clip(seed, SIZE, NUM_FRAMES, any_arm=True)
    return render_robot_clip(clip), clip.caption_without_arm


def robot_world_without_arm(clips: int, seed: int, workers: int = 1) -> tuple[torch.Tensor, list[str]]:
    """Robot clips of dataset seed `seed` for the DiT: either arm fetches a target anywhere on the table, and
    the caption names the object, never the arm. The base learns the robot world's look and motion, not the
    task the sample dataset is for (which arm the caption names)."""
    rendered = _render(_robot_clip_without_arm, [clip_seed(seed, i) for i in range(clips)], workers)
    return torch.from_numpy(np.stack([frames for frames, _ in rendered])), [caption for _, caption in rendered]
