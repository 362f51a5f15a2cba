"""The run folder contract: every file name, event, status field and card key the trainer and its watchers share.

The trainer writes a run folder; the studio, scripts and tests only read it. Nothing else is shared between the
two sides, so this module is the whole API between them (a test checks that every name the studio reads is
defined here). A run is the folder `<output_dir>/<name>/` (the studio's output_dir is `<workspace>/runs`):

    config.json          the validated TrainConfig the run was started with (written once, by whoever starts it)
    status.json          how the run stands: see `Status`; with the exit code, the truth about how it ended
                         (a run the studio queued has config.json and status.json only, state `queued`)
    metrics.jsonl        one JSON object per line, appended by the main process only; see `EVENTS`
    train.log            human-readable log of every phase (tracebacks of unexpected failures land here)
    process.log          the launched process's stdout and stderr, written by whoever launched it
    invalid_items.json   clips dropped by `skip_invalid: true`, each with its reason (only when some were)
    checkpoints/step-N/  resumable state (adapter, optimizer, scheduler, RNG, step), complete when it holds DONE;
                         its adapter is loadable like adapter/ (WEIGHTS_FILE + card), the variant <run>@step-N
    samples/step-N/      sample videos rendered at step N with the adapter of that step (sample_every): one
                         sample-<i>.mp4 per sample prompt + samples.json (prompt, first frame, seed, settings)
    adapter/             the weights file + adapter_card.json (see `CARD_KEYS`) + README.md (a model card)
    trackers/            the experiment tracker's local files (only with report_to, see trainer.trackers)

This module is dependency-free: the studio imports it without torch.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

CONFIG_FILE = "config.json"
STATUS_FILE = "status.json"
METRICS_FILE = "metrics.jsonl"
LOG_FILE = "train.log"
INVALID_FILE = "invalid_items.json"
CHECKPOINTS_DIR = "checkpoints"
ADAPTER_DIR = "adapter"
TRACKERS_DIR = "trackers"
SAMPLES_DIR = "samples"  # holds one step-N/ folder per sampled step
SAMPLE_RECORD_FILE = "samples.json"  # in each samples/step-N/: every input of its videos
CHECKPOINT_DONE_MARK = "DONE"
# A checkpoint as a variant (Generate & compare, evaluate, compare.json, compare.mp4): "<run>@step-N".
CHECKPOINT_LABEL = "{run}@{checkpoint}"
PROCESS_LOG = "process.log"
RUNS_DIR = "runs"  # TrainConfig's default output_dir, and the studio's <workspace>/runs

# An adapter folder (a run's adapter/, or one imported into the studio) holds these files.
WEIGHTS_FILE = "pytorch_lora_weights.safetensors"  # the name diffusers' load_lora_weights looks for
CARD_FILE = "adapter_card.json"
MODEL_CARD_FILE = "README.md"

# The keys of adapter_card.json, each with its meaning. The trainer writes exactly these (a test checks it).
CARD_KEYS: dict[str, str] = {
    "base_model": '"tiny", a local folder or a Hub model id',
    "revision": "the base model's revision",
    "commit": "the Hub commit the revision resolved to (null for tiny or a local folder)",
    "adapter": "lora or dora",
    "rank": "adapter rank",
    "alpha": "LoRA alpha",
    "target_modules": "transformer layers that carry the adapter",
    "dataset": "path, clips, digest and per-file sha256 of the training data",
    "steps": "optimizer steps trained",
    "final_loss": "loss of the last step",
    "config": "the full TrainConfig",
    "created": "UTC time of saving",
    "project_version": "version of this project that trained it",
    "dataset_provenance": "the dataset's provenance.json (an imported LeRobot dataset: source, camera, episodes), "
    "or null",
    "evaluation": "the latest `evaluate --card` of this adapter (held-out data, settings, its scores and the base "
    "model's), or null",
}
# A generation folder: what `generate` (and the studio's worker) writes for one comparison, beside one
# <variant>.mp4 per variant.
COMPARE_VIDEO_FILE = "compare.mp4"  # every variant side by side, labelled
COMPARE_RECORD_FILE = "compare.json"  # every input, and per variant its adapter's card summary and seconds

COMPARE_EVALUATION_KEY = "evaluation"  # compare.json of `evaluate --out`: the scores of every variant

# `python -m trainer evaluate --events`: one JSON object per line on stdout, each with `event`; the last one is
# done or error.
EVALUATE_EVENTS: dict[str, dict[str, str]] = {
    "progress": {
        "clip": "clip being rendered (1-based)",
        "clips": "clips in all",
        "key": "the clip's key",
        "variant": "variant being rendered",
        "step": "denoising steps done",
        "steps": "steps per variant",
    },
    "done": {"result": "the scores (what --json prints)", "out_dir": "the comparison folder (--out), or null"},
    "error": {"message": "one sentence saying what went wrong and how to fix it"},
}

# `python -m trainer caption --events`: one JSON object per line on stdout, each with `event`; the last one is
# done or error. A cancelled run ends with an error event; every caption file it wrote is complete.
CAPTION_EVENTS: dict[str, dict[str, str]] = {
    "start": {
        "clips": "clips to caption in this run",
        "skipped": "clips left as they are (they have a caption, or a proposal when captioning into a folder)",
        "model": "the captioning model: a Hub id or a folder",
        "revision": "the model revision asked for, or null",
        "out_dir": "where the caption files go: the dataset folder, or the --to folder",
    },
    "progress": {
        "clip": "clips done (1-based)",
        "clips": "clips to caption in this run",
        "key": "the clip's key",
        "path": "the caption file written, relative to out_dir (null when the clip failed)",
        "captions": "what was written: {variant: text}",
        "problem": "why this clip got no caption (it does not decode, the model wrote nothing), or null",
        "seconds": "wall seconds since the model was loaded",
        "eta": "estimated seconds left",
    },
    "done": {"written": "caption files written", "failed": "clips that got no caption", "out_dir": "as in start"},
    "error": {"message": "one sentence saying what went wrong and how to fix it"},
}

# The generation worker's answers (`python -m trainer.worker`), one JSON object per line on its stdout; each
# has `id` (the request's) and `event`.
WORKER_EVENTS: dict[str, dict[str, str]] = {
    "progress": {"variant": "variant being rendered", "step": "denoising steps done", "total": "steps per variant"},
    "done": {"record": "the compare.json record", "out_dir": "the generation folder"},
    "error": {"message": "one sentence saying what went wrong and how to fix it"},
}

# The card keys a person compares adapters by (tables, compare.json, the Adapters tab).
CARD_SUMMARY_KEYS = ("base_model", "revision", "adapter", "rank", "alpha", "steps", "final_loss", "created")

# Every event has `event` (its kind) and `time` (Unix seconds). The other fields of each kind:
EVENTS: dict[str, dict[str, str]] = {
    "start": {
        "run": "run name",
        "total_steps": "optimizer steps of the whole run",
        "epochs": "passes over the data",
        "steps_per_epoch": "optimizer steps per pass",
        "clips": "usable training clips",
        "num_processes": "data-parallel processes",
        "trainable_params": "adapter parameters",
        "resumed_from": "checkpoint step the run continues from, or 0",
    },
    "cache": {"done": "items encoded so far", "total": "items to encode", "reused": "items found in the cache"},
    "step": {
        "step": "optimizer step just finished (1-based)",
        "epoch": "0-based pass over the data",
        "loss": "mean flow-matching loss of the step over processes (the recipe's: mean over all latent elements)",
        "lr": "learning rate used by the step",
        "grad_norm": "L2 norm of the adapter gradients before clipping at max_grad_norm (clipping off: not clipped)",
        "step_time": "wall seconds of the step",
    },
    "checkpoint": {"step": "step saved", "path": "checkpoint folder"},
    "sample": {
        "step": "step whose adapter rendered the samples (0: the base, before training)",
        "path": "the samples/step-N folder",
        "videos": "the mp4 file names in it, one per sample prompt",
        "prompts": "each video's prompt, in the same order",
        "seconds": "wall seconds of rendering them",
    },
    "done": {
        "step": "last step",
        "state": "finished or stopped",
        "final_loss": "loss of the last step",
        "adapter": "adapter folder",
        "process_checksums": "digest of the adapter weights on each data-parallel process (all equal)",
    },
    "error": {"message": "one sentence saying what went wrong and how to fix it"},
}


# The types of the event fields a reader computes with (when present; REQUIRED_EVENT_FIELDS always): a line whose
# value has another type is unusable (`event_problem`). "time" is the writer's own field (EventWriter.emit).
EVENT_TYPES: dict[str, dict[str, tuple[type, ...]]] = {
    "start": {"total_steps": (int,), "resumed_from": (int,)},
    "cache": {"done": (int,), "total": (int,)},
    "step": {"step": (int,), "time": (int, float), "loss": (int, float), "lr": (int, float)},
    "checkpoint": {"step": (int,)},
    "sample": {"step": (int,)},
    "done": {"step": (int,)},
    "error": {"message": (str,)},
}
REQUIRED_EVENT_FIELDS = {"step": ("step", "time")}


def event_problem(event: Any) -> str | None:
    """Why a parsed metrics.jsonl line cannot be used, or None."""
    if not isinstance(event, dict):
        return "not a JSON object"
    kind = event.get("event")
    for name in REQUIRED_EVENT_FIELDS.get(kind, ()):
        if name not in event:
            return f"a {kind} event without {name}"
    for name, types in EVENT_TYPES.get(kind, {}).items():
        value = event.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, types):
            return f"{name} is {value!r}, not a {'whole number' if types == (int,) else 'number'}"
        if isinstance(value, float) and not math.isfinite(value) and name not in ("loss", "lr"):
            return f"{name} is {value!r}, not a finite number"
    return None


def sample_video_name(index: int) -> str:
    """The file name of sample `index` (0-based) in a samples/step-N folder."""
    return f"sample-{index}.mp4"


# --- step folders: checkpoints/step-N/ and samples/step-N/ ------------------------------------------------------
STEP_PREFIX = "step-"


def step_folder_name(step: int) -> str:
    return f"{STEP_PREFIX}{step}"


def folder_step(folder: Path) -> int | None:
    """N of a step-N folder, or None for any other name."""
    digits = Path(folder).name.removeprefix(STEP_PREFIX)
    return int(digits) if Path(folder).name.startswith(STEP_PREFIX) and digits.isdigit() else None


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINTS_DIR / step_folder_name(step)


def sample_dir(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / SAMPLES_DIR / step_folder_name(step)


def is_complete_checkpoint(folder: Path) -> bool:
    """A checkpoint is complete when it holds its DONE mark (written last, after a rename into place)."""
    return (Path(folder) / CHECKPOINT_DONE_MARK).is_file()


def complete_checkpoints(run_dir: Path) -> list[Path]:
    """A run's complete checkpoints, oldest first."""
    root = Path(run_dir) / CHECKPOINTS_DIR
    found = [p for p in root.glob(STEP_PREFIX + "*") if folder_step(p) is not None and is_complete_checkpoint(p)]
    return sorted(found, key=folder_step)


def latest_checkpoint_step(run_dir: Path) -> int | None:
    """The step of the newest complete checkpoint, or None."""
    done = complete_checkpoints(run_dir)
    return folder_step(done[-1]) if done else None


class RunState(str, Enum):
    QUEUED = "queued"  # config.json written by the studio, waiting for the run before it to end (studio.run_queue)
    RUNNING = "running"
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"
    CANCELLED = "cancelled"  # taken out of the queue before it started; its config.json stays


@dataclass
class Status:
    state: RunState
    pid: int | None = None
    step: int = 0
    total: int = 0
    error: str | None = None
    exit_code: int | None = None  # written by whoever saw the process end (the trainer cannot know its own)
    queued_at: float | None = None  # Unix seconds it joined the queue (state queued): the queue's order
    updated: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["state"] = self.state.value
        return d


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON so that a reader never sees a half-written file (rename is atomic on POSIX)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, path)


def write_status(run_dir: Path, status: Status) -> None:
    status.updated = time.time()
    write_json_atomic(Path(run_dir) / STATUS_FILE, status.to_dict())


def read_status(run_dir: Path) -> Status | None:
    """The run's status, or None when it has none yet (or it cannot be parsed)."""
    try:
        raw = json.loads((Path(run_dir) / STATUS_FILE).read_text())
        raw["state"] = RunState(raw["state"])
        known = Status.__dataclass_fields__
        return Status(**{k: v for k, v in raw.items() if k in known})  # newer writers may add fields
    except (OSError, ValueError, KeyError, TypeError):
        return None


class EventWriter:
    """Appends events to metrics.jsonl; a no-op on non-main processes so each event is written once."""

    def __init__(self, run_dir: Path, enabled: bool = True):
        self.path = Path(run_dir) / METRICS_FILE
        self.enabled = enabled

    def emit(self, event: str, **fields: Any) -> dict[str, Any]:
        if event not in EVENTS:
            raise ValueError(f"unknown event kind {event!r}; add it to trainer.spec.run_folder.EVENTS first")
        undeclared = sorted(set(fields) - set(EVENTS[event]))
        if undeclared:
            raise ValueError(
                f"{event} event fields {undeclared} are not in trainer.spec.run_folder.EVENTS; add them first"
            )
        record = {"event": event, "time": round(time.time(), 3), **fields}
        if self.enabled:
            with self.path.open("a") as fh:
                fh.write(json.dumps(record) + "\n")
                fh.flush()
        return record


def read_events(run_dir: Path) -> list[dict[str, Any]]:
    """All complete events of a run (a partly written last line is left for the next read)."""
    try:
        text = (Path(run_dir) / METRICS_FILE).read_text()
    except OSError:
        return []
    out = []
    for line in text.splitlines(keepends=True):
        if line.endswith("\n") and line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def read_card(adapter_dir: Path) -> dict[str, Any]:
    """An adapter's card, or {} when it is missing or damaged: the weights are still usable without it."""
    try:
        card = json.loads((Path(adapter_dir) / CARD_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return card if isinstance(card, dict) else {}


def card_summary(card: dict[str, Any]) -> dict[str, Any]:
    """The CARD_SUMMARY_KEYS of a card (None where missing)."""
    return {key: card.get(key) for key in CARD_SUMMARY_KEYS}
