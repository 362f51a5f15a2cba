"""The one training configuration, shared by the studio, the CLI and the trainer.

Strict on purpose: unknown keys are rejected and every problem is reported at once, by field name, so a user
fixes a config in one pass. This module imports nothing heavy (the studio process imports it without torch).
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import json
import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from trainer.spec.bounds import MAX_INT, MAX_SAMPLE_PROMPTS, MAX_SEED, size_problem, text_problems
from trainer.spec.embedded import TINY_MODEL
from trainer.spec.field_values import coerce
from trainer.spec.run_folder import write_json_atomic
from trainer.spec.schedules import LrScheduler
from trainer.spec.video_shape import RECIPE_SIZE, TEMPORAL_STRIDE, video_shape_problems

DEFAULT_HUB_MODEL = "nvidia/Cosmos-Predict2.5-2B"
DEFAULT_HUB_REVISION = "diffusers/base/post-trained"
RECIPE_TARGET_MODULES = ("to_q", "to_k", "to_v", "to_out.0", "ff.net.0.proj", "ff.net.2")


def resolve_revision(model: str, revision: str | None) -> str | None:
    """The one rule for which revision of a model is meant: the revision given, else the post-trained diffusers
    revision for the default Hub model (the diffusers weights the recipe trains), else None (the main branch;
    a local folder or the tiny model has no revision). Train, generate, evaluate, the worker and the cards use it."""
    if revision:
        return revision
    return DEFAULT_HUB_REVISION if model == DEFAULT_HUB_MODEL else None


AdapterType = Literal["lora", "dora"]
MixedPrecision = Literal["no", "bf16", "fp16"]
CaptionVariant = Literal["long", "medium", "short"]
CacheMode = Literal["auto", "off"]
CheckpointingPolicy = Literal["off", "every_block", "selective"]
AttentionBackend = Literal["auto", "native", "flash", "cudnn"]
ReportTo = Literal["none", "tensorboard", "wandb", "trackio"]
# The package each tracker needs (accelerate would otherwise drop a missing one with only a warning).
TRACKER_PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "trackio": "trackio"}


def _f(
    default: Any, help: str, group: str = "advanced", max: float | None = None, form: str | None = None, **kw: Any
) -> Any:
    """A config field with its help text, form group, largest allowed value and, where the form cannot tell it
    from the type, how the form edits it (the form and docs use these)."""
    meta = {"help": help, "group": group, **({"max": max} if max is not None else {})}
    meta.update({"form": form} if form else {})
    if callable(default) and not isinstance(default, type):
        return field(default_factory=default, metadata=meta, **kw)
    return field(default=default, metadata=meta, **kw)


@dataclass
class TrainConfig:
    # --- basics -----------------------------------------------------------------------------------
    data: str = _f(
        "",
        'Dataset folder in any accepted layout, or "sample" / "sample:held_out" (the built-in robot dataset).',
        "basic",
    )
    model: str = _f(TINY_MODEL, '"tiny" (embedded default), a local diffusers folder, or a Hub model id.', "basic")
    revision: str = _f("", f"Hub revision; empty means {DEFAULT_HUB_REVISION!r} for a Hub id.", "basic")
    output_dir: str = _f("runs", "Folder that holds run folders; the run is <output_dir>/<name>/.", "basic")
    name: str = _f("run", "Run name: letters, digits, '-', '_' and '.'.", "basic")
    adapter: AdapterType = _f("lora", "Adapter type: lora, or dora (weight-decomposed LoRA).", "basic")
    rank: int = _f(32, "Adapter rank r (the recipe uses 32).", "basic", max=256)
    alpha: float = _f(32.0, "LoRA alpha; the update is scaled by alpha / rank.", "basic")
    learning_rate: float = _f(2**-14.5, "Peak AdamW learning rate before f_max scaling.", "basic")
    epochs: int = _f(100, "Passes over the dataset; ignored when max_steps is set.", "basic", max=100_000)
    max_steps: int = _f(0, "Optimizer steps for the whole run; 0 means use epochs.", "basic", max=1_000_000)
    height: int = _f(RECIPE_SIZE.height, "Training height in pixels, a multiple of 16.", "basic", max=2048)
    width: int = _f(RECIPE_SIZE.width, "Training width in pixels, a multiple of 16.", "basic", max=2048)
    num_frames: int = _f(RECIPE_SIZE.num_frames, "Frames per training clip, 4k+1 (93, 17, 9 ...).", "basic", max=257)
    sample_every: int = _f(
        0,
        "Render sample videos every N steps, at step 0 (the base) and at the last step, into <run>/samples/; "
        "0 turns samples off (each costs a generation: seconds for the tiny model, minutes for 2B).",
        "basic",
        max=1_000_000,
    )
    # --- adapter ----------------------------------------------------------------------------------
    target_modules: list[str] = _f(lambda: list(RECIPE_TARGET_MODULES), "Transformer Linear layers that get adapters.")
    # --- optimizer and schedule -------------------------------------------------------------------
    weight_decay: float = _f(1e-3, "AdamW weight decay.")
    lr_scheduler: LrScheduler = _f(
        "linear", "After warm-up: linear decay f_max -> f_min (the recipe), constant f_max, or cosine f_max -> f_min."
    )
    warmup_steps: int = _f(1000, "Linear warm-up steps (clipped to the run's length).", max=1_000_000)
    f_max: float = _f(0.5, "Learning-rate factor at the end of warm-up.")
    f_min: float = _f(0.2, "Learning-rate factor at the last step (linear and cosine schedules).")
    max_grad_norm: float = _f(1.0, "Gradient clipping norm; 0 disables clipping.")
    fused_adamw: bool = _f(True, "Use the fused AdamW kernel on CUDA (ignored on CPU).")
    # --- data -------------------------------------------------------------------------------------
    batch_size: int = _f(1, "Clips per optimizer micro-step on each process.", max=64)
    gradient_accumulation: int = _f(1, "Micro-steps per optimizer step.", max=1024)
    caption_variant: CaptionVariant = _f("long", "Which prompt of captions/*.json to train on.")
    prompt_prefix: str = _f("", 'Text put before every caption (GR1-100 uses "The robot arm is performing a task. ").')
    skip_invalid: bool = _f(False, "Drop unusable clips (recorded in the run folder) instead of refusing to start.")
    # --- objective --------------------------------------------------------------------------------
    cfg_dropout: float = _f(0.2, "Probability of training a step with an empty prompt (for guidance).")
    conditional_frames: dict[int, float] = _f(
        lambda: {1: 0.5, 2: 0.5}, "Probabilities of keeping 1 or 2 first latent frames clean (they condition)."
    )
    conditional_frame_timestep: float = _f(1e-4, "Timestep given to the clean conditioning frames.")
    sample_prompts: list[dict[str, str]] = _f(
        lambda: [],
        "Samples to render: first frame (an image, or a video whose first frame is used) and prompt, one "
        "'image | prompt' per line. Empty: the first two clips of a held_out/, validation/ or val/ folder beside "
        'the data folder (the built-in held-out split for "sample"), else the data\'s own first two clips.',
        form="pairs",
    )
    # --- precision and speed ----------------------------------------------------------------------
    mixed_precision: MixedPrecision = _f("bf16", "Autocast precision of the frozen model; adapters stay fp32.")
    allow_tf32: bool = _f(True, "Allow TF32 matmuls on Ampere and newer GPUs.")
    gradient_checkpointing: bool = _f(True, "Recompute transformer blocks in the backward pass to save memory.")
    checkpointing_policy: CheckpointingPolicy = _f(
        "every_block", "With gradient_checkpointing: every_block, or selective (keeps attention outputs)."
    )
    attention_backend: AttentionBackend = _f("auto", "Attention kernel: auto picks the fastest available one.")
    compile: bool = _f(False, "torch.compile each transformer block (regional compilation).")
    cache: CacheMode = _f("auto", "auto: encode latents and prompts once to disk and train from the cache.")
    cache_windows: int = _f(4, "Cached windows per clip longer than num_frames (temporal augmentation).", max=64)
    # --- run management ---------------------------------------------------------------------------
    seed: int = _f(0, "Random seed for noise, timesteps, dropout and data order.", max=MAX_SEED)
    checkpoint_every: int = _f(500, "Write a resumable checkpoint every N steps; 0 only at the end.")
    keep_checkpoints: int = _f(3, "Checkpoints kept (oldest removed first); 0 keeps all.")
    resume: str = _f("", 'Continue a run: "latest", or a checkpoint folder path.')
    report_to: ReportTo = _f(
        "none",
        "Experiment tracker that also gets each step's loss, lr, step_time and grad_norm; its local files go to "
        "<run>/trackers/.",
    )

    # -------------------------------------------------------------------------------------------------
    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name

    @property
    def model_revision(self) -> str | None:
        """The revision to fetch (`resolve_revision`)."""
        return resolve_revision(self.model, self.revision)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def validate(self) -> list[Problem]:
        """Every problem of this config, by field; empty when valid."""
        return _validate(self)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one field: `message` says what and how to fix it."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def problem_fields(problems: list[Problem]) -> list[str]:
    """The fields named by `problems`, each once, in order."""
    return list(dict.fromkeys(p.field for p in problems))


class ConfigError(ValueError):
    """A config with problems, each a `Problem`."""

    def __init__(self, problems: list[Problem], source: str = "config"):
        self.problems = problems
        self.source = source
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source} has {len(problems)} problem(s):\n{lines}")


FIELD_NAMES = tuple(f.name for f in fields(TrainConfig))
# Keys earlier versions wrote into config.json that no longer mean anything: accepted (and dropped) so a run
# folder from an earlier version can still be read and resumed. Any other unknown key is an error.
RETIRED_KEYS = {"guardrail": "generation settings choose the guardrail; training never generates"}


def config_from_dict(raw: dict[str, Any], source: str = "config") -> TrainConfig:
    """Build a validated TrainConfig; raises ConfigError listing every problem at once."""
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    types = {f.name: f.type for f in fields(TrainConfig)}
    for key, value in raw.items():
        if key in RETIRED_KEYS:
            continue
        if key not in types:
            close = difflib.get_close_matches(key, FIELD_NAMES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(Problem(key, f"unknown key{hint}"))
            continue
        try:
            values[key] = coerce(value, _resolve_type(types[key]))
        except (TypeError, ValueError) as exc:
            problems.append(Problem(key, str(exc)))
    cfg = TrainConfig(**values)
    problems += [p for p in cfg.validate() if p.field not in problem_fields(problems)]
    if problems:
        raise ConfigError(problems, source)
    return cfg


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read a JSON or TOML config file (by extension), apply overrides, validate."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError([Problem("file", f"cannot read {path} ({exc.strerror})")], str(path)) from None
    try:
        raw = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        kind = path.suffix.lstrip(".").upper() or "JSON"
        raise ConfigError([Problem("file", f"not valid {kind}: {exc}")], str(path)) from None
    if not isinstance(raw, dict):
        raise ConfigError([Problem("file", "the top level must be a table of key = value")], str(path))
    raw.update(overrides or {})
    return config_from_dict(raw, str(path))


def save_config(cfg: TrainConfig, path: str | Path) -> None:
    """Validate `cfg` and write it as JSON (atomically): the one place a run's config.json is written."""
    problems = cfg.validate()
    if problems:
        raise ConfigError(problems, f"run {cfg.name!r}")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(Path(path), cfg.to_dict())


def field_help() -> dict[str, dict[str, Any]]:
    """Per-field default, help text and group: the studio form and the docs are generated from this."""
    out = {}
    for f in fields(TrainConfig):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        choices = get_args(_resolve_type(f.type)) if get_origin(_resolve_type(f.type)) is Literal else ()
        out[f.name] = {"default": default, "choices": list(choices), **f.metadata}
    return out


# ---------------------------------------------------------------------------------------------------
_TYPE_NAMES = {
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "list[str]": list[str],
    "dict[int, float]": dict[int, float],
    "list[dict[str, str]]": list[dict[str, str]],
    "AdapterType": AdapterType,
    "MixedPrecision": MixedPrecision,
    "CaptionVariant": CaptionVariant,
    "CacheMode": CacheMode,
    "CheckpointingPolicy": CheckpointingPolicy,
    "AttentionBackend": AttentionBackend,
    "LrScheduler": LrScheduler,
    "ReportTo": ReportTo,
}


def _resolve_type(annotation: Any) -> Any:
    return _TYPE_NAMES[annotation] if isinstance(annotation, str) else annotation


def _validate(c: TrainConfig) -> list[Problem]:
    p: list[Problem] = []

    def need(ok: bool, name: str, msg: str) -> None:
        if not ok:
            p.append(Problem(name, f"{msg} (got {getattr(c, name)!r})"))

    def finite(name: str) -> bool:
        v = getattr(c, name)
        ok = isinstance(v, (int, float)) and math.isfinite(v)
        need(ok, name, "must be a finite number")
        return ok

    need(bool(c.data.strip()), "data", "must name a dataset folder")
    need(bool(c.model.strip()), "model", 'must be "tiny", a local folder or a Hub id')
    need(
        bool(c.name) and all(ch.isalnum() or ch in "-_." for ch in c.name) and c.name not in {".", ".."},
        "name",
        "must be letters, digits, '-', '_' or '.'",
    )
    need(c.rank >= 1, "rank", "must be at least 1")
    if finite("alpha"):
        need(c.alpha > 0, "alpha", "must be greater than 0")
    if finite("learning_rate"):
        need(0 < c.learning_rate < 1, "learning_rate", "must be between 0 and 1")
    if finite("weight_decay"):
        need(c.weight_decay >= 0, "weight_decay", "must be 0 or more")
    if finite("f_max"):
        need(0 < c.f_max <= 10, "f_max", "must be in (0, 10]")
    if finite("f_min"):
        need(0 <= c.f_min <= 10, "f_min", "must be in [0, 10]")
    if finite("max_grad_norm"):
        need(c.max_grad_norm >= 0, "max_grad_norm", "must be 0 (off) or more")
    need(c.warmup_steps >= 0, "warmup_steps", "must be 0 or more")
    need(c.max_steps >= 0, "max_steps", "must be 0 (use epochs) or more")
    need(c.max_steps > 0 or c.epochs >= 1, "epochs", "must be at least 1 when max_steps is 0")
    p += [Problem(name, message) for name, message in video_shape_problems(c.height, c.width, c.num_frames)]
    latent_frames = (c.num_frames - 1) // TEMPORAL_STRIDE + 1  # the model's own is checked once it is loaded
    need(bool(c.target_modules), "target_modules", "must name at least one layer")
    need(c.batch_size >= 1, "batch_size", "must be at least 1")
    need(c.gradient_accumulation >= 1, "gradient_accumulation", "must be at least 1")
    if finite("cfg_dropout"):
        need(0 <= c.cfg_dropout <= 1, "cfg_dropout", "must be a probability in [0, 1]")
    if finite("conditional_frame_timestep"):
        need(0 <= c.conditional_frame_timestep < 1, "conditional_frame_timestep", "must be in [0, 1)")
    cf = c.conditional_frames
    probs_ok = bool(cf) and all(math.isfinite(v) and v >= 0 for v in cf.values()) and abs(sum(cf.values()) - 1) < 1e-6
    need(probs_ok, "conditional_frames", "probabilities must be 0 or more and sum to 1")
    need(
        all(1 <= k < latent_frames for k in cf) or not (c.num_frames - 1) % 4 == 0,
        "conditional_frames",
        f"frame counts must be at least 1 and below the {latent_frames} latent frames of num_frames",
    )
    need(c.sample_every >= 0, "sample_every", "must be 0 (off) or more")
    p += [
        Problem("sample_prompts", f"sample {i} must have exactly a non-empty image and prompt (got {pair!r:.80})")
        for i, pair in enumerate(c.sample_prompts[:MAX_SAMPLE_PROMPTS], 1)
        if sorted(pair) != ["image", "prompt"] or not all(v.strip() for v in pair.values())
    ]
    need(c.checkpoint_every >= 0, "checkpoint_every", "must be 0 (end only) or more")
    need(c.keep_checkpoints >= 0, "keep_checkpoints", "must be 0 (keep all) or more")
    need(c.cache_windows >= 1, "cache_windows", "must be at least 1")
    need(c.seed >= 0, "seed", "must be 0 or more")
    p += _tracker_problems(c.report_to)
    p += _bound_problems(c, set(problem_fields(p)))
    return p


def _tracker_problems(report_to: str) -> list[Problem]:
    package = TRACKER_PACKAGES.get(report_to)
    if package is None or importlib.util.find_spec(package) is not None:
        return []
    return [
        Problem(
            "report_to",
            f"{report_to} needs the {package} package, which is not installed; "
            f'pip install {package}, or set report_to to "none"',
        )
    ]


def _bound_problems(c: TrainConfig, reported: set[str]) -> list[Problem]:
    """Each field above its metadata's `max`, then the clip's token budget (a GPU's: the trainer and the studio
    apply a CPU's where they know no GPU is there)."""
    out = []
    for f in fields(TrainConfig):
        value = getattr(c, f.name)
        top = f.metadata.get("max", MAX_INT if isinstance(value, int) and not isinstance(value, bool) else None)
        if top is not None and f.name not in reported and isinstance(value, (int, float)) and value > top:
            out.append(Problem(f.name, f"must be at most {top} (got {value!r})"))
    out += [Problem(name, message) for name, message in text_problems(c) if name not in reported]
    size = size_problem(c.height, c.width, c.num_frames) if not out else None
    if size and not reported & {"height", "width", "num_frames"}:
        out.append(Problem("height", size))
    return out


def markdown_reference() -> str:
    """The config reference table (docs/config.md is this text; a test keeps the two equal)."""
    rows = ["| key | default | meaning |", "|---|---|---|"]
    for name, entry in field_help().items():
        default = json.dumps(entry["default"]) if not isinstance(entry["default"], float) else repr(entry["default"])
        choices = f" One of: {', '.join(entry['choices'])}." if entry["choices"] else ""
        top = f" At most {entry['max']:,}." if "max" in entry else ""
        rows.append(f"| `{name}` | `{default}` | {entry['help']}{choices}{top} |")
    return (
        "# Training config reference\n\n"
        "Generated from `trainer/spec/config.py` (`TrainConfig`); JSON or TOML, flat, unknown keys rejected.\n"
        "A clip may have at most the tokens of 432x768x93 (the recipe) on a GPU, of 240x432x33 on a CPU.\n\n"
        + "\n".join(rows)
        + "\n"
    )
