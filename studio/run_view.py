"""What the Train tab shows about a run, without Gradio: a one-line headline, the numbers, the curves, the log.

Everything comes from the run folder (status.json, metrics.jsonl, the logs) through the job manager, so a
page reload or a studio restart shows the same thing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from studio.jobs import JobError, JobManager
from studio.metrics_tail import MetricsTail, loss_frame, progress
from studio.run_files import config_problem, status_problem
from trainer.spec.run_folder import ADAPTER_DIR, METRICS_FILE, RunState, read_status

LOG_LINES = 40
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # progress bars move the cursor; a log view shows text only


@dataclass
class RunView:
    name: str
    state: str  # running / finished / stopped / failed / unknown
    numbers: dict[str, Any]  # step, total, steps_per_second, eta_seconds, last_loss, exit_code, error, active,
    # problems (files of the run that could not be read, by file and line: shown, never fatal)
    headline: str  # markdown, one line
    frame: pd.DataFrame  # step, loss, lr, grad_norm
    log: str
    signature: tuple  # changes whenever anything shown changes (lets a poller skip redraws)
    events: list[dict[str, Any]] = field(default_factory=list)  # every usable event (samples, checkpoints)
    run_dir: Path | None = None


class RunMonitor:
    """Keeps one metrics tail per run so each poll reads only what the trainer appended since the last."""

    def __init__(self, jobs: JobManager):
        self.jobs = jobs
        self._tails: dict[str, MetricsTail] = {}

    def run_names(self) -> list[str]:
        """Every run on disk, the training one first, then the most recently updated."""
        runs = self.jobs.runs()
        return [r.name for r in sorted(runs, key=lambda r: not r.active)]

    def default_run(self) -> str | None:
        names = self.run_names()
        return names[0] if names else None

    def view(self, name: str | None, log_lines: int = LOG_LINES) -> RunView | None:
        if not name:
            return None
        info = next((r for r in self.jobs.runs() if r.name == name), None)
        if info is None:
            return None
        tail = self._tails.setdefault(name, MetricsTail(info.run_dir / METRICS_FILE))
        tail.poll()
        status = read_status(info.run_dir)
        numbers = progress(tail.events, status)
        problems = [p for p in (status_problem(info.run_dir), config_problem(info.run_dir)) if p] + tail.problems
        numbers.update(
            state=info.state.value if info.state else "unknown",
            exit_code=info.exit_code,
            error=self.jobs.paths.redact(info.error) or None,
            active=info.active,
            problems=[self.jobs.paths.redact(p) for p in problems],
        )
        try:
            log = self.jobs.paths.redact(ANSI_ESCAPE.sub("", self.jobs.log_tail(name, log_lines)))
        except JobError:
            log = ""
        headline = _headline(name, numbers, tail.events, info.run_dir / ADAPTER_DIR)
        signature = (
            name,
            len(tail.events),
            numbers["state"],
            status.updated if status else None,
            log[-200:],
            len(problems),
        )
        return RunView(
            name,
            numbers["state"],
            numbers,
            headline,
            loss_frame(tail.events),
            log,
            signature,
            tail.events,
            info.run_dir,
        )


def _headline(name: str, n: dict[str, Any], events: list[dict[str, Any]], adapter_dir) -> str:
    state = n["state"]
    parts = [f"**{name}**", state if not n["active"] or state != "running" else "training"]
    if n["total"]:
        parts.append(f"step {n['step']}/{n['total']}")
    if state == RunState.RUNNING.value:
        caching = [e for e in events if e.get("event") == "cache"]
        if not n["total"] and not caching:
            parts.append("loading the model and data")
        elif caching and n["step"] == 0:
            parts.append(f"encoding clips {caching[-1].get('done', 0)}/{caching[-1].get('total', '?')}")
        if n["steps_per_second"]:
            parts.append(f"{n['steps_per_second']:.2f} steps/s")
        if n["eta_seconds"] is not None:
            parts.append(f"ETA {format_duration(n['eta_seconds'])}")
    if n["last_loss"] is not None:
        label = "loss" if state == RunState.RUNNING.value else "final loss"
        parts.append(f"{label} {n['last_loss']:.4f}")
    if state == RunState.FAILED.value:
        parts.append("exit code " + ("unknown" if n["exit_code"] is None else str(n["exit_code"])))
    if state in (RunState.FINISHED.value, RunState.STOPPED.value) and adapter_dir.is_dir():
        parts.append("adapter saved")
    return " · ".join(parts)


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
