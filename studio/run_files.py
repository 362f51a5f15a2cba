"""Reading a run folder's files as the studio must: a torn or garbage file is a reason shown, never a crash.

trainer.spec.run_folder says what the files are; this says, for a view, what is wrong with one that cannot be used
(its name, and the line where the problem is).
"""

from __future__ import annotations

import json
from pathlib import Path

from trainer.spec.run_folder import CONFIG_FILE, STATUS_FILE, RunState


def json_problem(path: Path) -> str | None:
    """Why a JSON file of the run cannot be read (with the line of a syntax error), or None when it can."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return f"{path.name} is missing"
    except OSError as exc:
        return f"{path.name} cannot be read ({exc.strerror})"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        what = "is empty" if not text.strip() else f"is not valid JSON at line {exc.lineno}, column {exc.colno}"
        return f"{path.name} {what} (a write was cut off, or the file was edited)"
    if not isinstance(value, dict):
        return f"{path.name} holds {type(value).__name__}, not an object of fields"
    return None


def status_problem(run_dir: Path) -> str | None:
    """Why status.json cannot be used, or None."""
    problem = json_problem(run_dir / STATUS_FILE)
    if problem:
        return problem
    state = json.loads((run_dir / STATUS_FILE).read_text()).get("state")
    if state not in {s.value for s in RunState}:
        return f"{STATUS_FILE} has the state {state!r}, not one of {', '.join(s.value for s in RunState)}"
    return None


def config_problem(run_dir: Path) -> str | None:
    """Why config.json cannot be used as a config, or None (its fields are checked by load_config)."""
    problem = json_problem(run_dir / CONFIG_FILE)
    if problem:
        return problem
    from trainer.spec.config import ConfigError, load_config

    try:
        load_config(run_dir / CONFIG_FILE)
    except ConfigError as exc:
        return f"{CONFIG_FILE}: " + "; ".join(str(p) for p in exc.problems)
    return None
