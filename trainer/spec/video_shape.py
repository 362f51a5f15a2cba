"""The one video-shape rule (sizes, frame counts) of training, generation, evaluation and the sample data.

A module of its own, importing nothing: the training config, the generation settings and the sample worlds all
use it, and none of them may depend on another for it.
"""

from __future__ import annotations

from typing import NamedTuple


class VideoSize(NamedTuple):
    height: int
    width: int
    num_frames: int

    def label(self) -> str:
        return f"{self.height}x{self.width}, {self.num_frames} frames"


# The named sizes, each written here once: the config's defaults, the bounds, the presets and the forms use them.
RECIPE_SIZE = VideoSize(432, 768, 93)  # the fine-tuning recipe's clip: the config's default
MODEL_SIZE = VideoSize(704, 1280, 93)  # the pipeline's own call default: generation's, and its bound on a GPU
CPU_MAX_SIZE = VideoSize(240, 432, 33)  # the largest clip the tiny model is useful at on a CPU
TINY_SIZE = VideoSize(64, 64, 17)  # the embedded tiny model's and the sample world's clips

# Checked before any model is loaded (the config, the studio's forms), so stated for the supported models: pixels
# per transformer token side (Cosmos Predict 2.5: an 8x VAE and 2x2 patches; the tiny base: 4x and 4x4) and the
# VAE's temporal compression (4 for both). Once loaded, `trainer.cosmos.video_shape_problem` checks the model's own.
SIZE_MULTIPLE = 16
TEMPORAL_STRIDE = 4  # the VAE keeps frame 0 and compresses the rest by 4 in time


def min_frames(conditional_latent_frames: int = 1) -> int:
    """The fewest frames (4k+1) that hold the conditioning latent frames plus one latent frame to predict."""
    return TEMPORAL_STRIDE * conditional_latent_frames + 1


def condition_frames(conditional_latent_frames: int) -> int:
    """Video frames that make this many latent frames (1 -> 1, 2 -> 5): what a conditioning clip must hold."""
    return TEMPORAL_STRIDE * (conditional_latent_frames - 1) + 1


def video_shape_problems(
    height: int, width: int, num_frames: int, conditional_latent_frames: int = 1
) -> list[tuple[str, str]]:
    """(field, what is wrong) for each reason this video shape cannot be trained on or generated; empty: fine.

    Other frame counts than 4k+1 are not refused by the pipeline: it silently repeats frames, hence the rule.
    """
    problems = []
    for name, value in (("height", height), ("width", width)):
        if value < SIZE_MULTIPLE or value % SIZE_MULTIPLE:
            problems.append((name, f"must be a positive multiple of {SIZE_MULTIPLE}, e.g. 64 or 432 (got {value})"))
    least = min_frames(conditional_latent_frames)
    if num_frames < least or (num_frames - 1) % TEMPORAL_STRIDE:
        why = f"{conditional_latent_frames} conditioning latent frame{'s' if conditional_latent_frames > 1 else ''}"
        problems.append(
            ("num_frames", f"must be 4k+1 and at least {least} with {why}, e.g. 9, 17 or 93 (got {num_frames})")
        )
    return problems
