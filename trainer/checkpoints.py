"""Resumable checkpoints: `checkpoints/step-N/` holds the adapter, optimizer, scheduler, RNG states and step.

The adapter is saved as a run's final adapter is (`WEIGHTS_FILE` with its LoRA metadata, and a card for the
step), so a checkpoint is also an adapter folder: `pipe.load_lora_weights(checkpoints/step-N)` and the studio's
`run@step-N` variants load it. Checkpoints written before that hold only `ADAPTER_FILE` (peft naming, no
metadata): they still resume, but cannot be rendered.

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

from trainer.spec.run_folder import (
    CARD_FILE,
    CHECKPOINT_DONE_MARK,
    WEIGHTS_FILE,
    checkpoint_dir,
    complete_checkpoints,
    is_complete_checkpoint,
)

ADAPTER_FILE = "adapter_state.safetensors"  # older checkpoints: resumable, not loadable by diffusers
WEIGHTS_PREFIX = "transformer."  # what save_lora_weights puts before the peft key of each transformer weight


def find_resume_point(run_dir: Path, resume: str) -> Path | None:
    """The checkpoint `resume` names: "latest" (None when the run has none yet) or an explicit folder."""
    if not resume:
        return None
    if resume == "latest":
        done = complete_checkpoints(run_dir)
        return done[-1] if done else None
    path = Path(resume)
    if not is_complete_checkpoint(path):
        raise FileNotFoundError(f"resume: {path} is not a complete checkpoint (no {CHECKPOINT_DONE_MARK} file).")
    return path


def save(
    run_dir: Path,
    step: int,
    adapter: dict[str, torch.Tensor],
    optimizer,
    scheduler,
    extra: dict,
    metadata: dict | None = None,
    card: dict | None = None,
) -> Path:
    """Write the checkpoint of `step`. With the LoRA `metadata` (LoraConfig.to_dict()) the adapter is written
    loadable, as the final adapter is, and `card` beside it; without, in the older resume-only form."""
    final = checkpoint_dir(run_dir, step)
    tmp = final.with_name(f".{final.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if metadata is None:
        save_file(adapter, str(tmp / ADAPTER_FILE))
    else:
        from trainer.cosmos import PIPELINE_CLASS

        PIPELINE_CLASS.save_lora_weights(
            tmp, transformer_lora_layers=adapter, transformer_lora_adapter_metadata=metadata, safe_serialization=True
        )
    if card is not None:
        (tmp / CARD_FILE).write_text(json.dumps(card, indent=2, default=str))
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
    return adapter_weights(path), json.loads((path / "state.json").read_text())


def adapter_weights(path: Path) -> dict[str, torch.Tensor]:
    """The checkpoint's adapter in peft naming (as adapters.adapter_state returns it), from either form."""
    path = Path(path)
    if not (path / WEIGHTS_FILE).is_file():
        return load_file(str(path / ADAPTER_FILE))
    weights = load_file(str(path / WEIGHTS_FILE))
    return {k.removeprefix(WEIGHTS_PREFIX): v for k, v in weights.items()}


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
