"""A trained VAE kept in pre-training's work dir, so that a rerun that changes only the DiT reuses it.

The VAE phase is most of `pretrain-tiny`'s time on a CPU (33 of 41 minutes for the committed base); comparing
DiT designs on one camera should not pay it again. A VAE is named by a digest of every setting it depends on, so
a changed VAE setting never picks up a stale one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from trainer.pretrain_tiny.settings import PretrainSettings

# Every setting the trained VAE depends on. Not the DiT's: init_vae reseeds all the VAE's random weights from
# `seed`, so the VAE does not depend on what was built before it.
VAE_FIELDS = (
    "seed",
    "clips",
    "vae_world",
    "vae_clips",
    "vae_seed",
    "vae_base_dim",
    "vae_spatial",
    "vae_image_steps",
    "vae_image_batch",
    "vae_video_steps",
    "vae_video_batch",
    "vae_crop",
    "vae_lr",
    "vae_kl_weight",
    "threads",
    "device",
)
WEIGHTS, HISTORY = "vae.pt", "history.json"  # the history is written last: a folder without it is incomplete


def folder(work_dir: Path, s: PretrainSettings) -> Path:
    key = json.dumps({name: getattr(s, name) for name in VAE_FIELDS}, sort_keys=True)
    return Path(work_dir) / f"vae-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def load(saved: Path, vae) -> list[dict] | None:
    """The training history of the VAE kept in `saved`, its weights loaded into `vae`; None when none is kept."""
    if not (saved / HISTORY).is_file():
        return None
    vae.load_state_dict(torch.load(saved / WEIGHTS, map_location=vae.device))
    return json.loads((saved / HISTORY).read_text())


def save(saved: Path, vae, history: list[dict]) -> None:
    saved.mkdir(parents=True, exist_ok=True)
    torch.save(vae.state_dict(), saved / WEIGHTS)
    (saved / HISTORY).write_text(json.dumps(history))


def training_seconds(history: list[dict]) -> float:
    """The time a VAE's phases took, from its history (each phase's seconds count from its own start)."""
    last = {h["phase"]: h["seconds"] for h in history}
    return round(sum(last.values()), 1)
