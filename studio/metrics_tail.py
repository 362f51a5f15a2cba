"""Follow a run's metrics.jsonl while the trainer appends to it, and turn its events into plot data and progress.

No Gradio here: the tabs call these functions from a timer and hand the results to components.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from trainer.spec.run_folder import METRICS_FILE, Status, event_problem

# Step rate is measured over the last few steps so the ETA follows the current speed, not the warm-up's.
RATE_WINDOW_STEPS = 20
CURVE_COLUMNS = ("step", "loss", "lr", "grad_norm")


class MetricsTail:
    """Incremental reader of one metrics.jsonl: each `poll()` returns only the events appended since the last one.

    `events` holds every usable event read since the file was (re)started, so a plot can be redrawn from it;
    `problems` names each line that was skipped (damaged, or a field of the wrong type) by its line number.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.events: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self._line = 0  # complete lines read so far
        self._offset = 0  # bytes consumed, including a buffered partial line
        self._partial = b""  # a last line the trainer has not finished writing yet
        self._inode: int | None = None

    def poll(self) -> list[dict[str, Any]]:
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            return []  # the trainer has not written its first event yet
        # A shorter or different file means it was truncated or replaced: everything read so far is stale.
        if info.st_size < self._offset or (self._inode is not None and info.st_ino != self._inode):
            self._restart()
        self._inode = info.st_ino
        with self.path.open("rb") as fh:
            fh.seek(self._offset)
            chunk = fh.read()
        self._offset += len(chunk)
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        new = []
        for line in lines:
            self._line += 1
            event, problem = _parse(line)
            if problem:
                self.problems.append(f"{METRICS_FILE} line {self._line}: {problem}; the line is skipped")
            elif event is not None:
                new.append(event)
        self.events.extend(new)
        return new

    def _restart(self) -> None:
        self._offset = 0
        self._partial = b""
        self._line = 0
        self.events = []
        self.problems = []


def _parse(line: bytes) -> tuple[dict[str, Any] | None, str | None]:
    # A damaged line (a crash mid-write, a disk full, a hand edit) must not stop the watch; the next one is good.
    if not line.strip():
        return None, None
    try:
        event = json.loads(line)
    except ValueError:
        return None, "not valid JSON"
    problem = event_problem(event)
    return (None, problem) if problem else (event, None)


def loss_frame(events: list[dict[str, Any]]) -> pd.DataFrame:
    """The history of the current weights as columns step, loss, lr, grad_norm (for gr.LinePlot), in step order;
    grad_norm is NaN for steps logged without it (runs from before it was logged).

    Each attempt (a `start` event) continues from its `resumed_from` step: the steps an earlier attempt ran
    past that checkpoint, and every step before a start over (resumed_from 0), are not this run's history."""
    rows: list[tuple] = []
    for e in events:
        if e.get("event") == "start":
            resumed = e.get("resumed_from") or 0
            rows = [row for row in rows if row[0] <= resumed]
        elif e.get("event") == "step" and "step" in e and "loss" in e:
            rows.append((e["step"], e["loss"], e.get("lr"), e.get("grad_norm")))
    frame = pd.DataFrame(rows, columns=list(CURVE_COLUMNS)).astype({"grad_norm": float})
    return frame.drop_duplicates("step", keep="last").sort_values("step").reset_index(drop=True)


EMA_WEIGHT = 0.1  # each step's share of the smoothed loss (like TensorBoard's smoothing 0.9), debiased at the start
RAW, SMOOTHED = "loss", "smoothed (EMA)"


def loss_curve(frame: pd.DataFrame) -> pd.DataFrame:
    """The loss frame as two series for one plot: the raw per-step loss and its exponential moving average
    (columns step, loss, series). One step's loss is noisy (random timestep and noise per draw): the trend is
    in the average."""
    raw = frame[["step", "loss"]].assign(series=RAW)
    smoothed = raw.assign(loss=raw["loss"].ewm(alpha=EMA_WEIGHT, adjust=True).mean(), series=SMOOTHED)
    return pd.concat([raw, smoothed], ignore_index=True)


def progress(events: list[dict[str, Any]], status: Status | None) -> dict[str, Any]:
    """How far the run is: step, total, steps_per_second, eta_seconds and last_loss (None where not known yet)."""
    attempt = _current_attempt(events)
    steps = [e for e in attempt if e.get("event") == "step" and "step" in e]
    starts = [e for e in attempt if e.get("event") == "start"]
    step = steps[-1]["step"] if steps else (status.step if status else 0)
    total = (status.total if status and status.total else 0) or (starts[-1].get("total_steps", 0) if starts else 0)
    rate = _steps_per_second(steps[-RATE_WINDOW_STEPS:])
    eta = (total - step) / rate if rate and total >= step else None
    return {
        "step": step,
        "total": total,
        "steps_per_second": rate,
        "eta_seconds": eta,
        "last_loss": steps[-1].get("loss") if steps else None,
    }


def _current_attempt(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events since the last `start`: a resumed run's earlier attempt must not skew its rate or step."""
    for i in range(len(events) - 1, -1, -1):
        if events[i].get("event") == "start":
            return events[i:]
    return events


def _steps_per_second(steps: list[dict[str, Any]]) -> float | None:
    if len(steps) < 2:
        return None
    elapsed = steps[-1]["time"] - steps[0]["time"]
    done = steps[-1]["step"] - steps[0]["step"]
    return done / elapsed if elapsed > 0 and done > 0 else None
