"""A run's sample videos and marks, as the Train tab shows them, without Gradio.

The trainer announces each samples/step-N folder with a `sample` event. The strip shows the first sampled step
(the base, before training) above the latest ones, each sample as a filmstrip image (studio.previews), so the
arm starting to move shows without pressing play. Run folders are never served by the page (process.log and
config.json hold server paths), so the strip's videos are copies in a servable folder of the workspace; only
files named by the contract are copied, from inside the run's own samples/ folder, whatever an event's path says.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from studio.metrics_tail import SMOOTHED
from studio.previews import filmstrip
from trainer.spec.run_folder import sample_dir, sample_video_name, step_folder_name

SHOWN_STEPS = 6  # the first sampled step and the latest five: every sample of the CPU preset (steps 0-1200 by 300)
MARK_KINDS = {"sample": "samples", "checkpoint": "checkpoints"}  # event -> series name on the loss plot


def sample_steps(events: list[dict[str, Any]]) -> dict[int, list[str]]:
    """Each sampled step (in order) with its prompts; a step sampled again (a resumed run) counts once."""
    steps: dict[int, list[str]] = {}
    for e in events:
        if e.get("event") == "sample" and isinstance(e.get("step"), int) and isinstance(e.get("prompts"), list):
            steps[e["step"]] = [str(p) for p in e["prompts"]]
    return dict(sorted(steps.items()))


def shown_steps(events: list[dict[str, Any]]) -> list[int]:
    """The steps the strip shows: the first sampled one and the latest ones."""
    ordered = list(sample_steps(events))
    return ordered[:1] + ordered[1:][-(SHOWN_STEPS - 1) :]


def strip_columns(events: list[dict[str, Any]]) -> int:
    """The gallery's columns: one per sample prompt, so each shown step is one row."""
    return max((len(p) for p in sample_steps(events).values()), default=1) or 1


def sample_strip(run_dir: Path, events: list[dict[str, Any]], serve_dir: Path) -> list[tuple[str, str]]:
    """(picture, caption) for the gallery, one row per shown step (the first sampled one, then the latest) and
    one column per sample prompt. Each video is copied to `serve_dir`/<run>/step-N/ (again when the trainer
    rewrote it) and shown as its filmstrip, made beside the copy (the video itself if it cannot be decoded).
    A video not on disk (deleted, or not written yet) is left out."""
    steps = sample_steps(events)
    strip = []
    for step in shown_steps(events):
        for index, prompt in enumerate(steps[step]):
            source = sample_dir(run_dir, step) / sample_video_name(index)
            copy = _servable_copy(source, Path(serve_dir) / Path(run_dir).name / step_folder_name(step))
            if copy is not None:
                label = "base (step 0)" if step == 0 else f"step {step}"
                strip.append((str(filmstrip(copy) or copy), f"{label} · {prompt}"))
    return strip


def samples_at(run_dir: Path, events: list[dict[str, Any]], steps: set[int], serve_dir: Path) -> list[tuple[str, str]]:
    """sample_strip of only the sampled steps in `steps` (those the run sampled), in step order."""
    chosen = [e for e in events if e.get("event") == "sample" and e.get("step") in steps]
    return sample_strip(run_dir, chosen, serve_dir)


def sampled_step_at(events: list[dict[str, Any]], step: int | None) -> int | None:
    """The run's latest sampled step at or before `step` (None: its latest), or None when it has no sample."""
    sampled = [s for s in sample_steps(events) if step is None or s <= step]
    return sampled[-1] if sampled else None


def _servable_copy(source: Path, folder: Path) -> Path | None:
    """A copy of `source` in `folder`, fresh (a new mtime: the workspace's pruning goes by age); None while the
    video is not there (deleted, or not written yet)."""
    try:
        info = source.stat()
    except OSError:
        return None
    target = folder / source.name
    try:
        current = target.stat()
        if current.st_size == info.st_size and current.st_mtime >= info.st_mtime:
            return target
    except OSError:
        pass
    folder.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(source, tmp)
    tmp.replace(target)
    return target


MARK_HALF_HEIGHT = 0.08  # of the curve's loss range: each mark is a short vertical tick across the trend


def curve_marks(curve: pd.DataFrame, events: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows (step, loss, series) drawing the sampled and checkpointed steps as vertical ticks across the smoothed
    loss (step 0, before any loss, at the first one). A line plot joins a series' points, so each tick is two
    points and a gap (a missing loss breaks the line) before the next one."""
    smoothed = curve[curve["series"] == SMOOTHED]
    rows = []
    if len(smoothed):
        steps, losses = smoothed["step"].tolist(), smoothed["loss"].tolist()
        span = float(curve["loss"].max() - curve["loss"].min()) or abs(losses[-1]) or 1.0
        half = MARK_HALF_HEIGHT * span
        marks = {}
        for e in events:
            series, step = MARK_KINDS.get(e.get("event")), e.get("step")
            if series and isinstance(step, int):
                marks[(series, step)] = losses[min(range(len(steps)), key=lambda i: abs(steps[i] - step))]
        for (series, step), centre in sorted(marks.items()):
            rows += [(step, centre - half, series), (step, centre + half, series), (step, float("nan"), series)]
    return pd.DataFrame(rows, columns=["step", "loss", "series"]).astype({"step": "int64", "loss": "float64"})
