"""Size bounds of a clip, shared by the config validator, the trainer, the generation worker and the studio.

The per-field bounds (rank, max_steps, ...) are each field's `max` in TrainConfig's metadata; what depends on
several fields or on the device is here. Torch-free: the studio imports it.
"""

from __future__ import annotations

import math

from trainer.spec.video_shape import CPU_MAX_SIZE, MODEL_SIZE, RECIPE_SIZE, SIZE_MULTIPLE, TEMPORAL_STRIDE

# The largest clip a run may train on, in transformer tokens: the recipe's 432x768x93 on a GPU; on a CPU,
# 240x432x33 (the largest size the tiny model is useful at, already minutes per step). Bounds like this stop one
# request (the studio serves anyone who can open the page) from taking a server's memory before the first step.


def video_tokens(height: int, width: int, num_frames: int) -> int:
    """Transformer tokens of one clip, a budget measure checked before any model loads: SIZE_MULTIPLE pixels per
    token side and TEMPORAL_STRIDE frames per latent frame (trainer.spec.video_shape), true of the supported models."""
    per_side = SIZE_MULTIPLE
    return ((num_frames - 1) // TEMPORAL_STRIDE + 1) * max(height // per_side, 0) * max(width // per_side, 0)


# Generation has its own bounds (no gradients, so the model's own 704x1280x93 fits a GPU); the worker and the
# studio check them.
GENERATION_MAX_SIZE = MODEL_SIZE
MAX_INFERENCE_STEPS = 200


def generation_size_problem(height: int, width: int, num_frames: int, gpu: bool = True) -> str | None:
    """Why a generated clip of this size is over the GPU's (or CPU's) budget, else None."""
    return size_problem(height, width, num_frames, gpu, GENERATION_MAX_SIZE)


def size_problem(
    height: int, width: int, num_frames: int, gpu: bool = True, gpu_size: tuple[int, int, int] = RECIPE_SIZE
) -> str | None:
    """Why a clip of this size is over the token budget of a GPU (or a CPU), else None (a problem of `height`)."""
    h, w, n = gpu_size if gpu else CPU_MAX_SIZE
    tokens, budget = video_tokens(height, width, num_frames), video_tokens(h, w, n)
    if tokens <= budget:
        return None
    where = "a GPU" if gpu else "a CPU (no GPU is visible)"
    return (
        f"{height}x{width}x{num_frames} frames is {tokens} tokens, above the {budget} ({h}x{w}x{n}) allowed on "
        f"{where}; lower height, width or num_frames"
    )


# What a config may hold, however it arrives (a preset or a queued run saved by an API caller stays small).
MAX_TEXT = 4000  # characters of any text value: a path, a prompt
MAX_SAMPLE_PROMPTS = 16  # each is a generation at every sample step


def long_text_problem(value: str) -> str | None:
    """Why one text value (a prompt, a caption) is too long to pass to a model, or None."""
    if len(value) > MAX_TEXT:
        return f"text of at most {MAX_TEXT} characters (got {len(value)}); shorten it"
    return None


def text_problems(config) -> list[tuple[str, str]]:
    """(field, message) for each field of a TrainConfig holding text over MAX_TEXT, and for sample_prompts over
    MAX_SAMPLE_PROMPTS samples."""
    out = []
    if len(config.sample_prompts) > MAX_SAMPLE_PROMPTS:
        out.append(
            (
                "sample_prompts",
                f"at most {MAX_SAMPLE_PROMPTS} samples, each rendered at every sample step "
                f"(got {len(config.sample_prompts)}); keep the ones to compare",
            )
        )
    for name, value in vars(config).items():
        longest = max(map(len, _texts(value)), default=0)
        if longest > MAX_TEXT:
            out.append((name, f"text of at most {MAX_TEXT} characters (got {longest}); shorten it"))
    return out


def _texts(value) -> list[str]:
    """The text in a field's value: a string, a list's strings, and the images and prompts of sample_prompts."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [t for v in value for t in (v.values() if isinstance(v, dict) else [v]) if isinstance(t, str)]
    return []


MAX_SEED = 2**32 - 1  # what every seeding library takes (numpy's bound); a larger one overflowed in the child
MAX_INT = 2**31 - 1  # any other whole-number field without a bound of its own

MAX_STRENGTH = 10.0  # an adapter's strength (LoRA scale): 0-2 in practice, negative to subtract it


def strength_problem(value: float) -> str | None:
    """Why an adapter strength cannot be used (one clause), or None."""
    if not math.isfinite(value) or abs(value) > MAX_STRENGTH:
        return f"must be a number between -{MAX_STRENGTH:g} and {MAX_STRENGTH:g} (got {value:g})"
    return None
