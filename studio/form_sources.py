"""Where the Train form's values come from besides the defaults: presets and past runs. No Gradio here.

- a built-in preset: `trainer/presets/<name>.toml` (a partial config over the defaults), read-only;
- a workspace preset: `<workspace>/presets/<name>.json`, the form saved under a name (every form field: a
  preset keeps working when a default changes later). It is checked by the trainer's strict validator when
  saved and again when loaded, so a hand-edited file with a typo is named, field by field, never half-applied;
- a past run: its `config.json` (clone). The name becomes a fresh one (robot-lora -> robot-lora-2), so Start
  makes a new run and never overwrites the old one.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from studio.folders import Refused, Workspace
from studio.paths import PathPolicy, as_workspace, check_name, is_inside
from studio.train_form import (
    FORM_FIELDS,
    STUDIO_OWNED,
    build_config,
    preset_names,
    preset_values,
    to_form,
    unique_run_name,
)
from trainer.spec.config import ConfigError, TrainConfig, config_from_dict, load_config
from trainer.spec.run_folder import CONFIG_FILE, RUNS_DIR, write_json_atomic

PRESETS_DIR = "presets"
MAX_PRESETS = 200  # a caller of the API cannot fill the workspace with presets


class FormSourceError(Refused):
    """A preset or run the form cannot be filled from; the message names the file and what to do."""


def _problems(exc: ConfigError) -> str:
    return "; ".join(str(p) for p in exc.problems)


def config_values(config: TrainConfig) -> dict[str, Any]:
    """Every form field's value, as the form shows it, for a config."""
    return {name: to_form(name, getattr(config, name)) for name in FORM_FIELDS}


class FormSources:
    """The presets (built-in and the workspace's) and the runs of one workspace, as form values."""

    def __init__(self, workspace: Workspace | str | Path):
        self.ws = as_workspace(workspace)
        self.folder = self.ws.root / PRESETS_DIR

    # --- presets ------------------------------------------------------------------------------------
    def preset_names(self) -> list[str]:
        """The built-in presets, then the workspace's, each name once."""
        builtin = preset_names()
        saved = sorted(p.stem for p in self.folder.glob("*.json")) if self.folder.is_dir() else []
        return builtin + [name for name in saved if name not in builtin]

    def preset(self, name: str) -> dict[str, Any]:
        """Every form field's value under preset `name` (built-in or the workspace's)."""
        name = check_name(name, "preset")
        if name in preset_names():
            return preset_values(name)
        path = self.folder / f"{name}.json"
        where = f"{PRESETS_DIR}/{path.name}"
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise FormSourceError(f"No preset named {name!r}; pick one from the list.") from None
        except (OSError, ValueError) as exc:
            raise FormSourceError(
                f"{where} cannot be read ({exc}); save the preset again or delete the file."
            ) from None
        if not isinstance(raw, dict):
            raise FormSourceError(f"{where} holds {type(raw).__name__}, not a config; save the preset again.")
        try:
            config = config_from_dict(raw, where)
        except ConfigError as exc:
            raise FormSourceError(
                f"{where} has problems ({_problems(exc)}); fix them in the file or save the preset again."
            ) from None
        return config_values(config)

    def save_preset(self, name: str, values: dict[str, Any]) -> Path:
        """Save the form's values as `<workspace>/presets/<name>.json` (a workspace preset of that name is
        replaced); refused, with every problem, when the form is not a valid config."""
        self.ws.require_writable("saving presets")
        name = check_name(name, "preset")
        if name in preset_names():
            raise FormSourceError(f"{name!r} is a built-in preset and cannot be replaced; save under another name.")
        path = self.folder / f"{name}.json"
        if not path.exists() and len(self.preset_names()) - len(preset_names()) >= MAX_PRESETS:
            raise FormSourceError(
                f"The workspace already holds {MAX_PRESETS} presets, the most it keeps; delete "
                f"some from {PRESETS_DIR}/ first."
            )
        form = build_config(values)
        if form.problems:
            raise ConfigError(form.problems, f"preset {name!r}")
        self.ws.require_room("saving presets")
        self.folder.mkdir(parents=True, exist_ok=True)
        saved = {k: v for k, v in form.config.to_dict().items() if k not in STUDIO_OWNED}
        write_json_atomic(path, saved)
        return path

    # --- runs ---------------------------------------------------------------------------------------
    def run(self, name: str, taken: set[str]) -> dict[str, Any]:
        """Every form field's value from run `name`'s config.json, with a fresh name not in `taken` (clone)."""
        name = check_name(name, "run")
        path = self.ws.runs / name / CONFIG_FILE
        if not path.is_file():
            raise FormSourceError(f"No run named {name!r} in {RUNS_DIR}/; pick one from the runs list.")
        try:
            config = load_config(path)
        except ConfigError as exc:
            raise FormSourceError(
                f"Run {name!r} cannot be cloned: its {CONFIG_FILE} has problems ({_problems(exc)})."
            ) from None
        except (OSError, ValueError) as exc:
            raise FormSourceError(f"Run {name!r} cannot be cloned: its {CONFIG_FILE} cannot be read ({exc}).") from None
        shown = replace(
            config,
            data=self._shown(config.data),
            model=self._shown(config.model),
            sample_prompts=[{**p, "image": self._shown(p.get("image", ""))} for p in config.sample_prompts],
        )
        values = config_values(shown)
        values["name"] = unique_run_name(config.name, taken | {name})
        return values

    def _shown(self, value: str) -> str:
        """A path of a run's config as the form shows it, never as a server path: Start pinned the first frames,
        and a run started from the command line may name its data absolutely. One in the workspace is relative
        to it again (what Start expects); another keeps only its name unless this studio reads server folders."""
        path = Path(str(value))
        if not path.is_absolute() or (self.ws.allow_local_folders and not is_inside(path, self.ws.root)):
            return value
        return PathPolicy(self.ws).show(path)
