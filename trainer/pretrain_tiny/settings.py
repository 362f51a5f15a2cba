"""What one pre-training run is told: every PretrainSettings field is a `pretrain-tiny` option, and the record
(pretraining.json) keeps them all for an exact rerun."""

from __future__ import annotations

import time
from dataclasses import dataclass

HELD_OUT_SEED_OFFSET = 1  # held-out shapes clips come from dataset seed + 1: no clip seed in common
VAE_WORLDS = ("robot", "shapes", "strokes")
# Robot-world dataset seeds: 0 makes the sample dataset (data: "sample"), 1 the probe (robot_probe) and the
# settings checks of docs/tiny-world.md. A VAE that learns the robot world's look learns it from another seed.
RESERVED_ROBOT_SEEDS = (0, 1)
FIT_SHARES = {"vae_image_steps": 0.3, "vae_video_steps": 0.4, "dit_steps": 0.3}  # of fit_seconds
FIT_TRIAL_STEPS = 8  # steps timed on a throw-away copy to fit a phase's step count


@dataclass
class PretrainSettings:
    clips: int = 512
    held_out_clips: int = 16
    seed: int = 0
    # "shapes": the VAE learns from the DiT's shapes clips; "strokes": from the strokes world
    # (trainer.tinyworld.strokes_world); "robot": from the frames of robot clips of dataset seed vae_seed
    # (never a caption: the DiT never sees them).
    vae_world: str = "robot"
    vae_clips: int = 512  # strokes or robot clips
    vae_seed: int = 5  # the robot clips' dataset seed; never 0 (the sample dataset) nor 1 (the probe)
    vae_base_dim: int = 16  # the VAE's width (TinySpec.vae_base_dim)
    vae_spatial: int = 4  # the VAE's spatial compression, 8 or 4 (TinySpec.vae_spatial)
    dit_patch: int = 4  # the DiT's spatial patch (TinySpec.dit_patch); 4 with a 4x VAE keeps 8x/2's tokens
    dit_heads: int = 6  # the DiT's width in heads of 32 (TinySpec.dit_heads)
    # Robot clips of dataset seed vae_seed the DiT also learns from, with arm-free captions and either arm
    # fetching a target anywhere (data.robot_world_without_arm): the look and motion, never the task.
    # Measured (docs/tiny-world.md): with 512 of them the CPU preset's adapter hardly changed the base
    # (validation loss -4 %), so the committed base has none.
    dit_robot_clips: int = 0
    # The VAE learns in two phases. Images first (single frames: the causal VAE encodes frame 0 alone, and
    # the spatial layers are shared), cheap enough for many clips per step; then whole 17-frame windows, so
    # every chunk of the causal cache is trained (measured: trained on 5 or 9 frames, frames 9+ decode badly).
    vae_image_steps: int = 700
    vae_image_batch: int = 16
    vae_video_steps: int = 1200
    vae_video_batch: int = 2
    vae_crop: int = 64  # < 64: square crops (the VAE is fully convolutional), cheaper steps; the committed
    # base's VAE learned from whole 64x64 frames
    vae_lr: float = 1e-3  # measured: at 2e-3 even 8 clips stay on the mean-frame plateau
    vae_kl_weight: float = 1e-4
    dit_steps: int = 1500
    dit_batch: int = 8
    dit_lr: float = 1e-3
    dit_warmup: int = 100
    dit_weight_decay: float = 1e-3
    conditional_frames: tuple[tuple[int, float], ...] = ((1, 0.5), (2, 0.5))  # as the fine-tuning recipe
    cfg_dropout: float = 0.2
    threads: int = 1  # measured: on a shared 2-core machine 2 threads ran 3-6x slower than 1 under load
    device: str = "cpu"
    fit_seconds: float = 0.0  # > 0: fit the three phases' step counts to this many seconds (FIT_SHARES)
    score: bool = True  # score on held-out shapes clips after saving (needs ffmpeg: writes mp4 clips)
    workers: int = 1  # processes that render the worlds
    probe_clips: int = 24  # robot clips the VAE's round trip is probed on (robot_probe)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)
