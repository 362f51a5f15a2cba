"""The one set of generation settings, shared by `generate`, `evaluate`, the generation worker and the studio.

`GenerateSettings` defaults are the pipeline's own call defaults (704x1280, 93 frames, 36 steps, guidance 7),
the right ones for the real model. The embedded tiny model renders on a CPU with the `tiny` preset instead;
`preset_for(model)` picks it for the tiny model, so the CLIs, the worker and the studio start from the same
numbers. Field metadata (help, group, bounds) drives the CLI options, the studio inputs and the checks.

`video_shape_problems` (trainer/spec/video_shape.py) is the one video-shape rule (sizes, frame counts) for training,
generation, evaluation and the sample data. This module imports nothing heavy: the studio process imports it
without torch.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields
from typing import Any

from trainer.spec.bounds import MAX_INFERENCE_STEPS, MAX_SEED
from trainer.spec.config import Problem
from trainer.spec.embedded import TINY_MODEL
from trainer.spec.video_shape import MODEL_SIZE, RECIPE_SIZE, TINY_SIZE, video_shape_problems

PRECISIONS = ("auto", "bf16", "fp32")  # trainer.precision resolves them (it imports torch; this module must not)
MEMORY_MODES = ("auto", "full", "offload")  # trainer.memory_modes applies them


def _f(
    default: Any,
    help: str,
    group: str,
    bounds: tuple[float | None, float | None] = (None, None),
    choices: tuple[str, ...] = (),
) -> Any:
    """A settings field with its help text, group, inclusive (low, high) bounds (None: open) and, for a closed set
    of words, its choices."""
    return field(default=default, metadata={"help": help, "group": group, "bounds": bounds, "choices": choices})


@dataclass(kw_only=True)
class GenerateSettings:
    model: str = _f(TINY_MODEL, '"tiny" (embedded default), a local diffusers folder, or a Hub model id.', "model")
    revision: str = _f("", "Hub revision; empty means the model's default revision.", "model")
    guardrail: bool = _f(
        True,
        "NVIDIA's cosmos_guardrail, required for NVIDIA's model; turning it off is your "
        "decision under NVIDIA's Open Model License (the tiny model needs none).",
        "model",
    )
    precision: str = _f(
        "auto",
        "auto: bf16 where the device computes it natively (recent GPUs; CPUs with "
        "AVX512-BF16 or AMX), else fp32; bf16 or fp32 as asked (fp32 takes twice the "
        "memory).",
        "model",
        choices=PRECISIONS,
    )
    memory: str = _f(
        "auto",
        "full keeps every component on the GPU; offload moves each to the GPU only while it runs (diffusers' model "
        "CPU offload) and decodes the video in tiles: slower, fits 24 GB; auto picks full where the memory estimate "
        "fits the GPU (docs/memory.md).",
        "model",
        choices=MEMORY_MODES,
    )
    negative_prompt: str = _f("", "What the generation should avoid (used with guidance above 1).", "sampling")
    seed: int = _f(0, "Seeds the initial noise: every variant starts from the same noise.", "sampling", (0, MAX_SEED))
    steps: int = _f(36, "Denoising steps.", "sampling", (1, MAX_INFERENCE_STEPS))
    guidance: float = _f(
        7.0, "Classifier-free guidance scale; 1.0 turns guidance off (half the work).", "sampling", (1.0, 30.0)
    )
    height: int = _f(MODEL_SIZE.height, "Height in pixels, a multiple of 16.", "size", (16, 4096))
    width: int = _f(MODEL_SIZE.width, "Width in pixels, a multiple of 16.", "size", (16, 4096))
    num_frames: int = _f(MODEL_SIZE.num_frames, "Frames to generate, 4k+1 (93, 17, 9 ...).", "size", (5, 1025))
    fps: int = _f(16, "Frames per second of the written videos.", "size", (1, 240))

    def problems(self, conditional_latent_frames: int = 1) -> list[Problem]:
        """Every problem, by field; empty when the settings can be rendered."""
        p = [] if self.model.strip() else [Problem("model", 'must be "tiny", a local folder or a Hub id (got empty)')]
        for f in fields(GenerateSettings):
            value, choices = getattr(self, f.name), f.metadata["choices"]
            if choices and value not in choices:
                p.append(Problem(f.name, f"must be one of {', '.join(choices)} (got {value!r})"))
        shape = dict(video_shape_problems(self.height, self.width, self.num_frames, conditional_latent_frames))
        for f in fields(GenerateSettings):
            if f.name in shape:
                p.append(Problem(f.name, shape[f.name]))
                continue
            low, high = f.metadata["bounds"]
            value = getattr(self, f.name)
            if low is not None and value < low or high is not None and value > high:
                p.append(Problem(f.name, f"must be {_range_text(low, high)} (got {value!r})"))
        return p

    def settings(self) -> GenerateSettings:
        """Only the generation settings (this object's own fields) of a subclass such as a request."""
        return GenerateSettings(**{f.name: getattr(self, f.name) for f in fields(GenerateSettings)})


def _range_text(low: float | None, high: float | None) -> str:
    if high is None:
        return f"at least {_number(low)}"
    if low is None:
        return f"at most {_number(high)}"
    return f"between {_number(low)} and {_number(high)}"


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


SETTING_NAMES = tuple(f.name for f in fields(GenerateSettings))

# Named presets: changes from the defaults. `tiny` is what the embedded model needs on a CPU (and what the tiny
# world's published scores were measured with): its training size, 12 steps, and no guidance (one transformer
# call per step instead of two).
PRESETS: dict[str, dict[str, Any]] = {
    "model-default": {},
    "recipe": {"height": RECIPE_SIZE.height, "width": RECIPE_SIZE.width},  # the recipe's training size
    "tiny": {**TINY_SIZE._asdict(), "fps": 8, "steps": 12, "guidance": 1.0},
}
PRESET_HELP = {
    "model-default": f"the pipeline's defaults: {MODEL_SIZE.label()}, 36 steps, guidance 7",
    "recipe": f"the recipe's training size: {RECIPE_SIZE.label()}, 36 steps, guidance 7",
    "tiny": f"the embedded tiny model on a CPU: {TINY_SIZE.label()}, 12 steps, no guidance",
}


def preset_for(model: str) -> str:
    """The preset a model starts from: `tiny` for the embedded tiny model, the pipeline's defaults otherwise."""
    return "tiny" if model == TINY_MODEL else "model-default"


def preset_values(name: str, model: str = TINY_MODEL) -> dict[str, Any]:
    """Every setting of a preset (the defaults with the preset's changes), for `model`."""
    return {**field_defaults(), **PRESETS[name], "model": model}


def type_problems(values: dict[str, Any]) -> list[Problem]:
    """Each setting whose value (from JSON, say) is not of the field's type."""
    kinds = {"bool": (bool,), "int": (int,), "float": (int, float), "str": (str,)}
    p = []
    for f in fields(GenerateSettings):
        value = values.get(f.name, f.default)
        wrong_bool = isinstance(value, bool) and f.type != "bool"
        if wrong_bool or not isinstance(value, kinds[f.type]):
            p.append(Problem(f.name, f"must be {_TYPE_WORDS[f.type]} (got {value!r})"))
    return p


_TYPE_WORDS = {"bool": "true or false", "int": "a whole number", "float": "a number", "str": "text"}


def field_defaults() -> dict[str, Any]:
    return {f.name: f.default for f in fields(GenerateSettings)}


def field_help() -> dict[str, dict[str, Any]]:
    """Per-setting default, help, group and bounds (the studio builds its inputs from this)."""
    return {f.name: {"default": f.default, **f.metadata} for f in fields(GenerateSettings)}


# --- command line ---------------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per setting (`--num-frames`, `--no-guardrail` ...) plus `--preset`; unset options come from
    the preset, so every default is stated once, here."""
    parser.add_argument(
        "--preset",
        choices=list(PRESETS),
        default=None,
        help="starting values: "
        + "; ".join(f"{k}: {v}" for k, v in PRESET_HELP.items())
        + f" (default: tiny for the {TINY_MODEL!r} model, model-default for any other)",
    )
    for f in fields(GenerateSettings):
        if f.type in ("bool", bool):  # only guardrail: on by default, so the option turns it off
            parser.add_argument(
                f"--no-{f.name}", dest=f.name, action="store_const", const=False, default=None, help=f.metadata["help"]
            )
            continue
        kind = {"int": int, "float": float, "str": str}[f.type if isinstance(f.type, str) else f.type.__name__]
        shown = "the preset's" if f.name in _preset_keys() else repr(f.default)
        parser.add_argument(
            f"--{f.name.replace('_', '-')}", type=kind, default=None, help=f"{f.metadata['help']} (default: {shown})"
        )


def _preset_keys() -> set[str]:
    return {key for values in PRESETS.values() for key in values}


def values_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the options describe: the preset (chosen or implied by --model), then each given option."""
    model = args.model if getattr(args, "model", None) is not None else field_defaults()["model"]
    values = preset_values(args.preset or preset_for(model), model)
    values.update({name: getattr(args, name) for name in SETTING_NAMES if getattr(args, name, None) is not None})
    return values


def markdown_reference() -> str:
    """The generation settings reference (docs/generate.md is this text; a test keeps the two equal)."""
    rows = [
        "| setting | default | " + " | ".join(f"`{name}`" for name in PRESETS if PRESETS[name]) + " | meaning |",
        "|---|---|" + "---|" * sum(1 for v in PRESETS.values() if v) + "---|",
    ]
    for f in fields(GenerateSettings):
        low, high = f.metadata["bounds"]
        bounds = f" Allowed: {_range_text(low, high)}." if low is not None or high is not None else ""
        changed = " | ".join(f"`{v[f.name]!r}`" if f.name in v else "" for v in PRESETS.values() if v)
        option = f"--no-{f.name}" if f.type == "bool" else f"--{f.name.replace('_', '-')}"
        rows.append(f"| `{f.name}` (`{option}`) | `{f.default!r}` | {changed} | {f.metadata['help']}{bounds} |")
    presets = "\n".join(f"- `{name}`: {text}." for name, text in PRESET_HELP.items())
    return (
        "# Generation settings reference\n\n"
        "Generated from `trainer/spec/generate_settings.py` (`GenerateSettings`): the settings of `generate`, "
        "`evaluate`, the studio's generation worker and the Generate tab. Defaults are the pipeline's own; a "
        f"preset changes some of them:\n\n{presets}\n\n"
        f"Without `--preset`, the `tiny` preset applies to the {TINY_MODEL!r} model and `model-default` to any "
        "other. Height and width are multiples of 16; `num_frames` is 4k+1 and at least 5, or 9 when a video's "
        "first clip conditions (2 latent frames).\n\n" + "\n".join(rows) + "\n"
    )
