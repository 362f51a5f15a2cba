"""Pre-train the embedded tiny base model on generic worlds; it never sees the robot scenes.

    python -m trainer pretrain-tiny OUT_DIR [--vae-world strokes] [--vae-base-dim 16] [--device cuda]
                                            [--fit-seconds S] [--no-score] ...   (every PretrainSettings field)

Phases, top to bottom: data (the bouncing-shapes world with captions, and for the VAE optionally the strokes
world) -> VAE (reconstruction + a small KL, then the latent statistics the pipeline normalises with) -> text
encoder (random and fixed: it only has to map different prompts to different embeddings) -> DiT (every
parameter, trained with the fine-tuning objective `cosmos.flow_matching_loss` on cached latents and prompt
embeddings) -> save in diffusers layout -> score on held-out shapes clips -> PRETRAINING.md. Every draw is
seeded; on one machine with one thread count a rerun gives the same weights. `fit_seconds` fits the step counts
to a time budget from measured step times; the record holds the counts used, for an exact rerun.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from trainer import cosmos
from trainer.pretrain_tiny import vae_cache
from trainer.pretrain_tiny.data import (
    NUM_FRAMES,
    SIZE,
    robot_frames,
    robot_world_without_arm,
    shapes_world,
    strokes_world,
)
from trainer.pretrain_tiny.report import machine
from trainer.pretrain_tiny.scoring import prompt_separation, rescore, write_record
from trainer.pretrain_tiny.settings import (
    FIT_SHARES,
    FIT_TRIAL_STEPS,
    HELD_OUT_SEED_OFFSET,
    RESERVED_ROBOT_SEEDS,
    PretrainSettings,
    log,
)
from trainer.tinyworld import model as tiny
from trainer.tinyworld.sample_datasets import clip_seed


# ------------------------------------------------------------------------------------------------- data, fit
def to_video(frames: torch.Tensor) -> torch.Tensor:
    """uint8 [B, F, H, W, 3] -> float [B, 3, F, H, W] in [-1, 1]."""
    return frames.permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0


def fit_steps(run_trial, seconds: float, share: float) -> tuple[int, float]:
    """Steps that fill `share` of `seconds` at the step time `run_trial(FIT_TRIAL_STEPS)` measures."""
    run_trial(2)  # warm-up: a device's first steps load kernels and are no measure of the rest
    t0 = time.perf_counter()
    run_trial(FIT_TRIAL_STEPS)
    per_step = (time.perf_counter() - t0) / FIT_TRIAL_STEPS
    return max(100, int(seconds * share / per_step) // 100 * 100), per_step


# ------------------------------------------------------------------------------------------------- VAE
def init_vae(vae) -> None:
    """Variance-preserving convolutions and identity residual blocks. Measured: with PyTorch's default
    initialisation every downsampling halves the input's signal, the encoder's output hardly depends on the
    frames, and training sits on the "predict the mean frame" plateau for hundreds of steps."""
    from diffusers.models.autoencoders.autoencoder_kl_wan import WanAttentionBlock, WanResidualBlock

    for module in vae.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Conv3d)):
            torch.nn.init.normal_(module.weight, std=module.weight[0].numel() ** -0.5)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
    for module in vae.modules():
        if isinstance(module, WanResidualBlock):
            torch.nn.init.zeros_(module.conv2.weight)
        elif isinstance(module, WanAttentionBlock):
            torch.nn.init.zeros_(module.proj.weight)


def train_vae(
    vae, frames: torch.Tensor, s: PretrainSettings, clip_frames: int, batch: int, steps: int, phase: str
) -> list[dict]:
    """Reconstruction (L1 + MSE) of random square crops of random windows of `clip_frames` frames, plus a small
    KL that keeps the latents bounded. The decoder sees the posterior mean: what the DiT trains on and makes."""
    generator = torch.Generator().manual_seed(s.seed * 7919 + clip_frames)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=s.vae_lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, s.vae_lr, total_steps=steps, pct_start=0.05)
    vae.train()
    history, t0 = [], time.perf_counter()
    for step in range(1, steps + 1):
        index = torch.randint(len(frames), (batch, 1), generator=generator)
        starts = torch.randint(NUM_FRAMES - clip_frames + 1, (batch, 1), generator=generator)
        crop = min(s.vae_crop, SIZE)
        y0, x0 = (int(v) for v in torch.randint(SIZE - crop + 1, (2,), generator=generator))
        windows = frames[index.to(frames.device), (starts + torch.arange(clip_frames)).to(frames.device)]
        x = to_video(windows[:, :, y0 : y0 + crop, x0 : x0 + crop])
        if torch.rand((), generator=generator) < 0.5:  # mirror: the VAE has no notion of left and right
            x = x.flip(-1)
        posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.mean).sample
        mse, l1 = ((recon - x) ** 2).mean(), (recon - x).abs().mean()
        kl = 0.5 * (posterior.mean**2 + posterior.var - 1.0 - posterior.logvar).mean()
        loss = l1 + mse + s.vae_kl_weight * kl
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        if step % 100 == 0 or step == steps:
            history.append(
                {
                    "phase": phase,
                    "step": step,
                    "mse": round(mse.item(), 5),
                    "l1": round(l1.item(), 5),
                    "kl": round(kl.item(), 4),
                    "seconds": round(time.perf_counter() - t0, 1),
                }
            )
            log(f"vae {phase} step {step}/{steps}: {history[-1]}")
    vae.eval()
    return history


@torch.no_grad()
def encode_latents(vae, frames: torch.Tensor, batch: int = 8) -> torch.Tensor:
    """Un-normalised posterior means [N, 16, T, H/s, W/s] of whole clips (s: the VAE's spatial compression)."""
    chunks = [frames[i : i + batch].to(vae.device) for i in range(0, len(frames), batch)]
    return torch.cat([vae.encode(to_video(chunk)).latent_dist.mean for chunk in chunks])


def set_latent_statistics(vae, latents: torch.Tensor) -> None:
    """Per-channel mean and std of the shapes world's latents: normalised latents have unit variance."""
    mean = latents.mean(dim=(0, 2, 3, 4))
    std = latents.std(dim=(0, 2, 3, 4))
    vae.register_to_config(
        latents_mean=[round(float(v), 6) for v in mean], latents_std=[round(float(v), 6) for v in std]
    )


@torch.no_grad()
def reconstruction_psnr(vae, frames: torch.Tensor) -> float:
    x = to_video(round_trip(vae, frames))
    mse = ((x - to_video(frames)) ** 2).mean().item() / 4.0  # [-1, 1] -> [0, 1] scale
    return 10 * math.log10(1.0 / mse)


@torch.no_grad()
def round_trip(vae, frames: torch.Tensor) -> torch.Tensor:
    """uint8 [N, F, H, W, 3] through the VAE (posterior mean) and back, uint8 on the CPU."""
    out = []
    for i in range(0, len(frames), 4):
        recon = vae.decode(vae.encode(to_video(frames[i : i + 4].to(vae.device))).latent_dist.mean).sample
        out.append(((recon.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 4, 1).cpu())
    return torch.cat(out)


@torch.no_grad()
def robot_probe(vae, clips: int = 24, seed: int = 1) -> dict:
    """How the VAE carries robot scenes it was never trained on: round-trip PSNR and how often the arm scorer
    still names the moving arm, on robot clips of dataset seed 1 (never the sample dataset's seed 0)."""
    from trainer.tinyworld.hand_scorer import which_hand_moved
    from trainer.tinyworld.robot_world import render_robot_clip, sample_robot_clip

    robots = [sample_robot_clip(clip_seed(seed, i, held_out=True), SIZE, NUM_FRAMES) for i in range(clips)]
    frames = torch.from_numpy(np.stack([render_robot_clip(clip) for clip in robots]))
    recon = round_trip(vae, frames)
    hands = sum(which_hand_moved(recon[i].numpy()) == clip.hand for i, clip in enumerate(robots))
    return {
        "clips": clips,
        "dataset_seed": seed,
        "round_trip_psnr_db": round(reconstruction_psnr(vae, frames), 2),
        "arm_named_after_round_trip": hands,
    }


# ------------------------------------------------------------------------------------------------- DiT
class _WithFrozenProbe(torch.nn.Module):
    """The transformer with one frozen, unused parameter listed first: `flow_matching_loss` reads the model's
    dtype from a frozen parameter (under LoRA the base weights), and here every real parameter trains."""

    def __init__(self, transformer):
        super().__init__()
        self.probe = torch.nn.Parameter(torch.zeros(1), requires_grad=False)
        self.transformer = transformer

    def forward(self, **kwargs):
        return self.transformer(**kwargs)


def train_dit(transformer, latents: torch.Tensor, embeds: torch.Tensor, s: PretrainSettings) -> list[dict]:
    """All DiT parameters, AdamW, linear warm-up then cosine decay to 10 %, grad clip 1.0."""
    generator = torch.Generator().manual_seed(s.seed + 1)
    model = _WithFrozenProbe(transformer).train()
    transformer.requires_grad_(True)
    optimizer = torch.optim.AdamW(transformer.parameters(), lr=s.dit_lr, weight_decay=s.dit_weight_decay)

    def factor(i: int) -> float:
        if i < s.dit_warmup:
            return (i + 1) / s.dit_warmup
        progress = (i - s.dit_warmup) / max(s.dit_steps - s.dit_warmup, 1)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    conditional = dict(s.conditional_frames)
    history, running, t0 = [], [], time.perf_counter()
    order = torch.randperm(len(latents), generator=generator)
    cursor = 0
    for step in range(1, s.dit_steps + 1):
        if cursor + s.dit_batch > len(order):
            order, cursor = torch.randperm(len(latents), generator=generator), 0
        index = order[cursor : cursor + s.dit_batch]
        cursor += s.dit_batch
        clean = latents[index]
        draw = cosmos.draw_flow_batch(clean.shape, conditional, s.cfg_dropout, generator)
        loss = cosmos.flow_matching_loss(
            model, clean, embeds[index], draw, conditional_frame_timestep=1e-4, spatial_scale=s.vae_spatial
        )
        loss.backward()
        torch.nn.utils.clip_grad_norm_(transformer.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        cosmos.assert_finite(loss, step)
        running.append(loss.item())
        if step % 100 == 0 or step == s.dit_steps:
            history.append(
                {"step": step, "loss": round(float(np.mean(running)), 5), "seconds": round(time.perf_counter() - t0, 1)}
            )
            running = []
            log(f"dit step {step}/{s.dit_steps}: {history[-1]}")
    transformer.eval().requires_grad_(False)
    return history


# ------------------------------------------------------------------------------------------------- the run
def _fit(s: PretrainSettings, vae, transformer, frames, vae_frames, latents, embeds) -> PretrainSettings:
    """Step counts that fit s.fit_seconds, each timed on throw-away copies of the model."""
    measured = {}
    trials = {
        "vae_image_steps": lambda n: train_vae(copy.deepcopy(vae), vae_frames, s, 1, s.vae_image_batch, n, "trial"),
        "vae_video_steps": lambda n: train_vae(
            copy.deepcopy(vae), vae_frames, s, NUM_FRAMES, s.vae_video_batch, n, "trial"
        ),
    }
    if transformer is not None:
        trials = {
            "dit_steps": lambda n: train_dit(copy.deepcopy(transformer), latents, embeds, replace(s, dit_steps=n))
        }
    for name, trial in trials.items():
        steps, per_step = fit_steps(trial, s.fit_seconds, FIT_SHARES[name])
        measured[name] = steps
        log(f"fit: {name} = {steps} ({per_step * 1000:.1f} ms per step)")
    return replace(s, **measured)


def pretrain(out_dir: Path, s: PretrainSettings, work_dir: Path) -> dict:
    torch.set_num_threads(s.threads)
    if s.vae_world == "robot" and s.vae_seed in RESERVED_ROBOT_SEEDS:
        raise ValueError(f"vae_seed {s.vae_seed} is reserved (the sample dataset or the probe); choose another.")
    spec = replace(
        tiny.TinySpec(),
        vae_base_dim=s.vae_base_dim,
        vae_spatial=s.vae_spatial,
        dit_patch=s.dit_patch,
        dit_heads=s.dit_heads,
    )
    device = torch.device(s.device)
    t_start = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        timings[name] = round(time.perf_counter() - since, 1)
        return time.perf_counter()

    t = time.perf_counter()
    log(f"data: {s.clips} shapes clips + {s.held_out_clips} held out, {SIZE}x{SIZE}, {NUM_FRAMES} frames")
    frames, captions = shapes_world(s.clips, s.seed, s.workers)
    held_frames, _ = shapes_world(s.held_out_clips, s.seed + HELD_OUT_SEED_OFFSET, s.workers)
    vae_frames = frames
    if s.vae_world == "strokes":
        log(f"data: {s.vae_clips} strokes clips for the VAE")
        vae_frames = strokes_world(s.vae_clips, s.seed, s.workers)
    elif s.vae_world == "robot":
        log(f"data: {s.vae_clips} robot clips of dataset seed {s.vae_seed} for the VAE (frames only)")
        vae_frames = robot_frames(s.vae_clips, s.vae_seed, s.workers)
    if s.dit_robot_clips:
        log(f"data: {s.dit_robot_clips} robot clips of dataset seed {s.vae_seed} for the DiT (arm-free captions)")
        robot, robot_captions = robot_world_without_arm(s.dit_robot_clips, s.vae_seed, s.workers)
        frames, captions = torch.cat([frames, robot]), captions + robot_captions
    frames, vae_frames = frames.to(device), vae_frames.to(device)
    t = lap("data", t)

    components = tiny.build_components(spec)  # the text encoder keeps these seeded random weights
    vae, transformer = components["vae"].to(device), components["transformer"].to(device)
    torch.manual_seed(s.seed)
    init_vae(vae)
    if s.fit_seconds > 0:
        s = _fit(s, vae, None, frames, vae_frames, None, None)
    log(
        f"vae: {sum(p.numel() for p in vae.parameters()):,} parameters, "
        f"{s.vae_image_steps} image + {s.vae_video_steps} video steps on {s.vae_world}"
    )
    saved = vae_cache.folder(work_dir, s)
    vae_history = vae_cache.load(saved, vae)
    vae_reused = vae_history is not None
    if vae_reused:
        log(f"vae: reusing the VAE trained with these settings in {saved}")
    else:
        vae_history = train_vae(vae, vae_frames, s, 1, s.vae_image_batch, s.vae_image_steps, "images")
        log(f"vae after the images: robot probe {robot_probe(vae, s.probe_clips)}")
        vae_history += train_vae(vae, vae_frames, s, NUM_FRAMES, s.vae_video_batch, s.vae_video_steps, "videos")
        vae_cache.save(saved, vae, vae_history)
    vae.eval().requires_grad_(False)
    t = lap("vae", t)
    timings["vae"] = max(timings["vae"], vae_cache.training_seconds(vae_history))  # a reused VAE: the time it took then

    log("latents: every clip encoded once; latent statistics; prompt embeddings")
    raw = encode_latents(vae, frames)
    set_latent_statistics(vae, raw)
    pipe = cosmos.PIPELINE_CLASS(**components, safety_checker=cosmos.NoGuardrail())
    mean, inv_std = cosmos.latent_normalisers(pipe, raw.device, raw.dtype)
    latents = (raw - mean) * inv_std
    embeds = (
        torch.cat(
            [
                cosmos.encode_prompts(pipe, captions[i : i + 64], device=torch.device("cpu"))
                for i in range(0, len(captions), 64)
            ]
        )
        .float()
        .to(device)
    )
    recon_psnr, probe = reconstruction_psnr(vae, held_frames), robot_probe(vae, s.probe_clips)
    log(f"vae held-out reconstruction PSNR {recon_psnr:.2f} dB; robot probe {probe}")
    t = lap("latents", t)

    if s.fit_seconds > 0:
        s = _fit(s, vae, transformer, frames, vae_frames, latents, embeds)
    log(f"dit: {sum(p.numel() for p in transformer.parameters()):,} parameters, {s.dit_steps} steps")
    dit_history = train_dit(transformer, latents, embeds, s)
    t = lap("dit", t)

    components.update(vae=vae.cpu(), transformer=transformer.cpu())
    tiny.save_pipeline(components, out_dir, spec)
    timings["pretraining"] = round(time.perf_counter() - t_start, 1)
    record = {
        "settings": {**asdict(s), "fit_seconds": 0.0},
        "fitted_to_seconds": s.fit_seconds or None,
        "spec": asdict(spec),
        "timings_s": timings,
        "vae": {
            "history": vae_history,
            "held_out_psnr_db": round(recon_psnr, 2),
            "reused_from_work_dir": vae_reused,
            "robot_probe": probe,
            "latents_mean": vae.config.latents_mean,
            "latents_std": vae.config.latents_std,
        },
        "dit": {"history": dit_history},
        "held_out_scores": None,
        "prompt_separation": prompt_separation(pipe),
        "parameters": {
            name: sum(p.numel() for p in components[name].parameters())
            for name in ("transformer", "vae", "text_encoder")
        },
        "machine": machine(),
        "command": " ".join(["python -m trainer", *sys.argv[1:]]),
    }
    write_record(out_dir, record)
    log(f"saved to {out_dir} in {timings['pretraining']:.0f} s")
    if s.score:
        record = rescore(out_dir, work_dir)
    return record
