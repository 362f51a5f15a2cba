"""Experiment trackers (`report_to`): TensorBoard, Weights & Biases or Trackio, through accelerate's trackers.

metrics.jsonl stays the record the studio reads; a tracker gets a copy of every number of each `step` event
(loss, lr, step_time, grad_norm when the step has it), at that step, so the two never disagree. Each tracker's
local files go to <run>/trackers/ (TensorBoard: <run>/trackers/cosmos-lora-studio/).
"""

from __future__ import annotations

import json
from typing import Any

from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration

from trainer.spec.config import TrainConfig
from trainer.spec.run_folder import TRACKERS_DIR

PROJECT = "cosmos-lora-studio"  # the project every run is logged under; the run is named after cfg.name


def accelerator_kwargs(cfg: TrainConfig) -> dict[str, Any]:
    """Extra `Accelerator(...)` arguments: which tracker, and where its local files go."""
    if cfg.report_to == "none":
        return {}
    folders = ProjectConfiguration(project_dir=str(cfg.run_dir), logging_dir=str(cfg.run_dir / TRACKERS_DIR))
    return {"log_with": cfg.report_to, "project_config": folders}


def start(accelerator: Accelerator, cfg: TrainConfig, events):
    """Start the run's tracker; returns an event writer that also sends step events to it."""
    if cfg.report_to == "none":
        return events
    # TensorBoard flushes every 10 s rather than its default 120 s: a run that fails skips end_training, and
    # whatever is still buffered then never reaches the event file.
    init_kwargs = {
        "tensorboard": {"flush_secs": 10},
        "trackio": {"name": cfg.name},
        "wandb": {"name": cfg.name, "dir": str(cfg.run_dir / TRACKERS_DIR)},
    }
    accelerator.init_trackers(PROJECT, config=hyperparameters(cfg), init_kwargs=init_kwargs)
    return TrackedEvents(events, accelerator)


def hyperparameters(cfg: TrainConfig) -> dict[str, Any]:
    """The config as flat scalars: TensorBoard's hparams accept only bool, int, float and str."""
    return {k: v if isinstance(v, (bool, int, float, str)) else json.dumps(v) for k, v in cfg.to_dict().items()}


class TrackedEvents:
    """An EventWriter whose `step` events also go to the trackers, under the same names."""

    def __init__(self, events, accelerator: Accelerator):
        self._events, self._accelerator = events, accelerator

    def emit(self, kind: str, **fields: Any) -> dict[str, Any]:
        record = self._events.emit(kind, **fields)
        if kind == "step":
            numbers = {
                k: v
                for k, v in fields.items()
                if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)
            }
            self._accelerator.log(numbers, step=fields["step"])
        return record

    def __getattr__(self, name: str):
        return getattr(self._events, name)
