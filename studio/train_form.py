"""The Train tab's form, without Gradio: its fields (from trainer.spec.config.field_help), presets, and form -> config.

Nothing here declares an option: the fields, their help, groups and choices all come from TrainConfig, and
the form's values are validated by the same `config_from_dict` the trainer uses.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from trainer.spec.config import ConfigError, Problem, TrainConfig, config_from_dict, field_help, problem_fields
from trainer.spec.run_folder import RUNS_DIR
from trainer.spec.video_shape import CPU_MAX_SIZE, MODEL_SIZE, RECIPE_SIZE, TINY_SIZE

REPO_ROOT = Path(__file__).resolve().parents[1]
PRESETS_DIR = REPO_ROOT / "trainer" / "presets"
DEFAULT_PRESET = "cpu-tiny"  # the embedded tiny model on the sample data: Start works out of the box on a CPU

HELP = field_help()
# Where runs live and when one resumes is the studio's business (the runs list and the Resume button).
STUDIO_OWNED = ("output_dir", "resume")
BASIC_FIELDS = tuple(n for n, h in HELP.items() if h["group"] == "basic" and n not in STUDIO_OWNED)
ADVANCED_FIELDS = tuple(n for n, h in HELP.items() if h["group"] != "basic" and n not in STUDIO_OWNED)
FORM_FIELDS = BASIC_FIELDS + ADVANCED_FIELDS
SIZE_FIELDS = ("height", "width", "num_frames")

CUSTOM_SIZE = "custom"
SIZE_PRESETS: dict[str, tuple[int, int, int]] = {  # label -> (height, width, num_frames)
    "64x64, 9 frames (quick test)": (64, 64, 9),
    f"{TINY_SIZE.label()} (tiny)": TINY_SIZE,
    "128x128, 17 frames": (128, 128, 17),
    CPU_MAX_SIZE.label(): CPU_MAX_SIZE,
    f"{RECIPE_SIZE.label()} (recipe)": RECIPE_SIZE,
    f"{MODEL_SIZE.label()} (model default)": MODEL_SIZE,
}

FieldKind = Literal["choice", "bool", "int", "float", "text", "list", "table", "pairs"]
PAIR_SEPARATOR = " | "  # a "pairs" field's line: image | prompt


def field_kind(name: str) -> FieldKind:
    """How a field is edited: a choice of a closed set, a checkbox, a number, text, a list or a small table."""
    info = HELP[name]
    default = info["default"]
    if info.get("form") == "pairs":
        return "pairs"
    if info["choices"]:
        return "choice"
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float"
    if isinstance(default, list):
        return "list"
    if isinstance(default, dict):
        return "table"
    return "text"


def to_form(name: str, value: Any) -> Any:
    """A config value as its form widget shows it (lists and tables as one line of text)."""
    kind = field_kind(name)
    if kind == "list":
        return ", ".join(value)
    if kind == "table":
        return ", ".join(f"{k}: {v:g}" for k, v in value.items())
    if kind == "pairs":
        return "\n".join(f"{pair.get('image', '')}{PAIR_SEPARATOR}{pair.get('prompt', '')}" for pair in value)
    return value


def from_form(name: str, value: Any) -> Any:
    """A form widget's value as the config's raw value; ValueError says how to write it."""
    kind = field_kind(name)
    if kind in ("int", "float") and value is None:
        raise ValueError("must be a number (the box is empty)")
    if kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind == "list":
        return [part.strip() for part in str(value or "").split(",") if part.strip()]
    if kind == "table":
        return _parse_table(str(value or ""))
    if kind == "pairs":
        return _parse_pairs(str(value or ""))
    if kind == "text":
        return "" if value is None else str(value).strip()
    return value


def _parse_table(text: str) -> dict[str, float]:
    out = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        key, sep, number = (part.strip() for part in pair.partition(":"))
        if not sep or not key.isdigit():
            raise ValueError(f"write it as frames: probability pairs, like '1: 0.5, 2: 0.5' (got {text!r})")
        try:
            out[key] = float(number)
        except ValueError:
            raise ValueError(f"{number!r} is not a probability; write pairs like '1: 0.5, 2: 0.5'") from None
    return out


def _parse_pairs(text: str) -> list[dict[str, str]]:
    out = []
    for line in filter(None, (line.strip() for line in text.splitlines())):
        image, sep, prompt = (part.strip() for part in line.partition("|"))
        if not sep or not image or not prompt:
            raise ValueError(f"write one 'first-frame.png | prompt' per line (got {line!r})")
        out.append({"image": image, "prompt": prompt})
    return out


# --- presets ----------------------------------------------------------------------------------------
def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.toml"))


def preset_values(name: str) -> dict[str, Any]:
    """Every form field's value under a preset: the config defaults, overlaid with the preset file."""
    path = PRESETS_DIR / f"{name}.toml"
    try:
        preset = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"preset {name!r} cannot be read from {path} ({exc}); pick another preset.") from None
    values = {n: HELP[n]["default"] for n in FORM_FIELDS}
    values.update({k: v for k, v in preset.items() if k in values})
    return {n: to_form(n, v) for n, v in values.items()}


def size_label(height: Any, width: Any, num_frames: Any) -> str:
    """The size preset matching these values, or "custom"."""
    for label, size in SIZE_PRESETS.items():
        if size == (height, width, num_frames):
            return label
    return CUSTOM_SIZE


def size_values(label: str) -> dict[str, int]:
    """height, width and num_frames of size preset `label`, by name (none for the custom size)."""
    return dict(zip(SIZE_FIELDS, SIZE_PRESETS[label])) if label in SIZE_PRESETS else {}


def unique_run_name(base: str, taken: set[str]) -> str:
    """`base`, or base-2, base-3 ... when a run already uses the name."""
    if base not in taken:
        return base
    stem = base.rsplit("-", 1)[0] if base.rsplit("-", 1)[-1].isdigit() else base
    n = 2
    while f"{stem}-{n}" in taken:
        n += 1
    return f"{stem}-{n}"


# --- form -> config ---------------------------------------------------------------------------------
@dataclass
class FormResult:
    config: TrainConfig | None  # None while the form has problems
    problems: list[Problem] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)  # what config.json will hold (best effort when invalid)

    @property
    def fields_with_problems(self) -> list[str]:
        return problem_fields(self.problems)


def build_config(values: dict[str, Any]) -> FormResult:
    """The TrainConfig the form describes, checked by the trainer's own validator; every problem at once."""
    raw: dict[str, Any] = {}
    problems: list[Problem] = []
    for name, value in values.items():
        try:
            raw[name] = from_form(name, value)
        except ValueError as exc:
            problems.append(Problem(name, str(exc)))
    raw["output_dir"] = RUNS_DIR
    try:
        config = config_from_dict(raw, "the form")
    except ConfigError as exc:
        seen = problem_fields(problems)
        problems += [p for p in exc.problems if p.field not in seen]
        config = None
    if problems:
        return FormResult(None, problems, raw)
    return FormResult(config, [], config.to_dict())
