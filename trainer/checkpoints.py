"""Resumable checkpoints: `checkpoints/step-N/` holds the adapter, optimizer, scheduler, RNG states and step.

A checkpoint is written into a hidden temporary folder, marked complete with a DONE file, then renamed into
place: an interrupted save leaves only the temporary folder, never a `step-N` that looks valid.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from trainer.run_folder import CHECKPOINT_DONE_MARK, CHECKPOINTS_DIR

ADAPTER_FILE = "adapter_state.safetensors"


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINTS_DIR / f"step-{step}"


def is_complete(path: Path) -> bool:
    return (Path(path) / CHECKPOINT_DONE_MARK).exists()


def complete_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    root = Path(run_dir) / CHECKPOINTS_DIR
    found = [p for p in root.glob("step-*") if p.name[5:].isdigit() and is_complete(p)]
    return sorted(found, key=lambda p: int(p.name[5:]))


def find_resume_point(run_dir: Path, resume: str) -> Path | None:
    """The checkpoint `resume` names: "latest" (None when the run has none yet) or an explicit folder."""
    if not resume:
        return None
    if resume == "latest":
        done = complete_checkpoints(run_dir)
        return done[-1] if done else None
    path = Path(resume)
    if not is_complete(path):
        raise FileNotFoundError(f"resume: {path} is not a complete checkpoint (no {CHECKPOINT_DONE_MARK} file).")
    return path


def save(run_dir: Path, step: int, adapter: dict[str, torch.Tensor], optimizer, scheduler, extra: dict) -> Path:
    final = checkpoint_dir(run_dir, step)
    tmp = final.with_name(f".{final.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(adapter, str(tmp / ADAPTER_FILE))
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    torch.save(_rng_state(), tmp / "rng.pt")
    (tmp / "state.json").write_text(json.dumps({"step": step, **extra}, indent=2))
    (tmp / CHECKPOINT_DONE_MARK).write_text("complete\n")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final


def load(path: Path, optimizer, scheduler) -> tuple[dict[str, torch.Tensor], dict]:
    """Restore optimizer, scheduler and RNG in place; return the adapter weights and state.json."""
    path = Path(path)
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", map_location="cpu", weights_only=False))
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", map_location="cpu", weights_only=False))
    _set_rng_state(torch.load(path / "rng.pt", map_location="cpu", weights_only=False))
    return load_file(str(path / ADAPTER_FILE)), json.loads((path / "state.json").read_text())


def prune(run_dir: Path, keep: int) -> None:
    """Remove the oldest complete checkpoints beyond `keep` (0 keeps all)."""
    if keep <= 0:
        return
    for old in complete_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
