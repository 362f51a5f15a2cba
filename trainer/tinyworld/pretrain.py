"""Pre-train the embedded tiny base model on the generic shapes world; it never sees the robot scenes.

    python -m trainer pretrain-tiny OUT_DIR [--clips N] [--vae-image-steps N] [--vae-video-steps N]
                                            [--dit-steps N] [--seed S] [--threads T] [--work-dir DIR]

Phases, top to bottom: data (the bouncing-shapes world, with captions) -> VAE (reconstruction + a small KL,
then the latent statistics the pipeline normalises with) -> text encoder (random and fixed: it only has to map
different prompts to different embeddings) -> DiT (every parameter, trained with the fine-tuning objective
`cosmos.flow_matching_loss` on cached latents and prompt embeddings) -> save in diffusers layout -> score on
held-out shapes clips -> PRETRAINING.md. Every draw is seeded; on one machine with one thread count a rerun
gives the same weights.
"""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from trainer import cosmos
from trainer.tinyworld import model as tiny
from trainer.tinyworld.sample_datasets import make_shapes_dataset
from trainer.video import read_frames

SIZE, NUM_FRAMES = 64, 17  # the sample robot dataset's clip shape (trainer.tinyworld.builtin.SAMPLE_SETTINGS)
HELD_OUT_SEED_OFFSET = 1  # held-out shapes clips come from dataset seed + 1: no clip seed in common


@dataclass
class PretrainSettings:
    clips: int = 1024
    held_out_clips: int = 16
    seed: int = 0
    # The VAE learns in two phases. Images first (single frames: the causal VAE encodes frame 0 alone, and
    # the spatial layers are shared), cheap enough for many clips per step; then whole 17-frame windows, so
    # every chunk of the causal cache is trained (measured: trained on 5 or 9 frames, frames 9+ decode badly).
    vae_image_steps: int = 800
    vae_image_batch: int = 16
    vae_video_steps: int = 900
    vae_video_batch: int = 2
    vae_crop: int = 32  # the VAE is fully convolutional: square crops teach it the whole frame, 4x cheaper
    vae_lr: float = 5e-4  # measured: at 2e-3 even 8 clips stay on the mean-frame plateau
    vae_kl_weight: float = 1e-4
    dit_steps: int = 1500
    dit_batch: int = 8
    dit_lr: float = 1e-3
    dit_warmup: int = 100
    dit_weight_decay: float = 1e-3
    conditional_frames: tuple[tuple[int, float], ...] = ((1, 0.5), (2, 0.5))  # as the fine-tuning recipe
    cfg_dropout: float = 0.2
    threads: int = 1  # measured: on a shared 2-core machine 2 threads ran 3-6x slower than 1 under load


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ------------------------------------------------------------------------------------------------- data
def load_world(folder: Path, clips: int, seed: int) -> tuple[torch.Tensor, list[str]]:
    """Write the shapes world to `folder` and read it back: uint8 [N, F, H, W, 3] and one caption per clip."""
    manifest = make_shapes_dataset(folder, clips=clips, size=SIZE, num_frames=NUM_FRAMES, seed=seed)
    keys = [entry["key"] for entry in manifest["clips"]]
    frames = np.stack([read_frames(folder / "videos" / f"{key}.mp4") for key in keys])
    return torch.from_numpy(frames), [entry["caption"] for entry in manifest["clips"]]


def to_video(frames: torch.Tensor) -> torch.Tensor:
    """uint8 [B, F, H, W, 3] -> float [B, 3, F, H, W] in [-1, 1]."""
    return frames.permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0


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


def train_vae(vae, frames: torch.Tensor, s: PretrainSettings, clip_frames: int, batch: int, steps: int,
              phase: str) -> list[dict]:
    """Reconstruction (L1 + MSE) of random square crops of random windows of `clip_frames` frames, plus a small
    KL that keeps the latents bounded. The decoder sees the posterior mean: what the DiT trains on and makes."""
    generator = torch.Generator().manual_seed(s.seed * 7919 + clip_frames)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=s.vae_lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, s.vae_lr, total_steps=steps, pct_start=0.05)
    vae.train()
    history, t0 = [], time.perf_counter()
    for step in range(1, steps + 1):
        index = torch.randint(len(frames), (batch,), generator=generator).tolist()
        starts = torch.randint(NUM_FRAMES - clip_frames + 1, (batch,), generator=generator).tolist()
        y0, x0 = (int(v) for v in torch.randint(SIZE - s.vae_crop + 1, (2,), generator=generator))
        rows, cols = slice(y0, y0 + s.vae_crop), slice(x0, x0 + s.vae_crop)
        x = to_video(torch.stack([frames[i, t : t + clip_frames, rows, cols] for i, t in zip(index, starts)]))
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
            history.append({"phase": phase, "step": step, "mse": round(mse.item(), 5), "l1": round(l1.item(), 5),
                            "kl": round(kl.item(), 4), "seconds": round(time.perf_counter() - t0, 1)})  # fmt: skip
            log(f"vae {phase} step {step}/{steps}: {history[-1]}")
    vae.eval()
    return history


@torch.no_grad()
def encode_latents(vae, frames: torch.Tensor, batch: int = 8) -> torch.Tensor:
    """Un-normalised posterior means [N, 16, T, H/8, W/8] of whole clips."""
    chunks = [frames[i : i + batch] for i in range(0, len(frames), batch)]
    return torch.cat([vae.encode(to_video(chunk)).latent_dist.mean for chunk in chunks])


def set_latent_statistics(vae, latents: torch.Tensor) -> None:
    """Per-channel mean and std of the shapes world's latents: normalised latents have unit variance."""
    mean = latents.mean(dim=(0, 2, 3, 4))
    std = latents.std(dim=(0, 2, 3, 4))
    vae.register_to_config(latents_mean=[round(float(v), 6) for v in mean],
                           latents_std=[round(float(v), 6) for v in std])  # fmt: skip


@torch.no_grad()
def reconstruction_psnr(vae, frames: torch.Tensor) -> float:
    x = to_video(frames)
    recon = torch.cat([vae.decode(vae.encode(x[i : i + 4]).latent_dist.mean).sample for i in range(0, len(x), 4)])
    mse = ((recon.clamp(-1, 1) - x) ** 2).mean().item() / 4.0  # [-1, 1] -> [0, 1] scale
    return 10 * math.log10(1.0 / mse)


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
        loss = cosmos.flow_matching_loss(model, clean, embeds[index], draw, conditional_frame_timestep=1e-4)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(transformer.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        cosmos.assert_finite(loss, step)
        running.append(loss.item())
        if step % 100 == 0 or step == s.dit_steps:
            history.append({"step": step, "loss": round(float(np.mean(running)), 5),
                            "seconds": round(time.perf_counter() - t0, 1)})  # fmt: skip
            running = []
            log(f"dit step {step}/{s.dit_steps}: {history[-1]}")
    transformer.eval().requires_grad_(False)
    return history


# ------------------------------------------------------------------------------------------------- checks
PROMPT_PAIRS = (  # captions differing in one word: the DiT can only follow what the embeddings tell apart
    ("The left arm picks up the red apple and places it in the bowl.",
     "The right arm picks up the red apple and places it in the bowl."),
    ("A red circle moves to the left.", "A red circle moves to the right."),
    ("A red circle moves to the left.", "A blue circle moves to the left."),
)  # fmt: skip


@torch.no_grad()
def prompt_separation(pipe) -> list[dict]:
    """Per pair: relative L2 distance of the whole embedding, and of the most different token."""
    out = []
    for a, b in PROMPT_PAIRS:
        ea, eb = cosmos.encode_prompts(pipe, [a, b]).float()
        token = ((ea - eb).norm(dim=-1) / ea.norm(dim=-1)).max()
        out.append({"a": a, "b": b, "relative_distance": round(float((ea - eb).norm() / ea.norm()), 4),
                    "largest_token_distance": round(float(token), 4)})  # fmt: skip
    return out


def score(model_dir: Path, held_out_dir: Path, clips: int) -> dict:
    """trainer.evaluate on held-out shapes clips: validation loss and generated-vs-real error."""
    from trainer.evaluate import EvalSettings, evaluate

    settings = EvalSettings.from_preset("tiny", model=str(model_dir), data=str(held_out_dir), max_clips=clips,
                                        guardrail=False)  # our own toy weights: not NVIDIA's model
    result = evaluate(settings)
    return {"base": result["variants"]["base"], "reference": result["reference"], "settings": result["settings"]}


# ------------------------------------------------------------------------------------------------- the run
def pretrain(out_dir: Path, s: PretrainSettings, work_dir: Path, spec: tiny.TinySpec = tiny.TinySpec()) -> dict:
    torch.set_num_threads(s.threads)
    t_start = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        timings[name] = round(time.perf_counter() - since, 1)
        return time.perf_counter()

    t = time.perf_counter()
    log(f"data: {s.clips} shapes clips + {s.held_out_clips} held out, {SIZE}x{SIZE}, {NUM_FRAMES} frames")
    frames, captions = load_world(work_dir / "shapes", s.clips, s.seed)
    held_frames, _ = load_world(work_dir / "shapes_held_out", s.held_out_clips, s.seed + HELD_OUT_SEED_OFFSET)
    t = lap("data", t)

    components = tiny.build_components(spec)  # the text encoder keeps these seeded random weights
    vae, transformer = components["vae"], components["transformer"]
    log(f"vae: {sum(p.numel() for p in vae.parameters()):,} parameters, "
        f"{s.vae_image_steps} image + {s.vae_video_steps} video steps")
    torch.manual_seed(s.seed)
    init_vae(vae)
    vae_history = train_vae(vae, frames, s, 1, s.vae_image_batch, s.vae_image_steps, "images")
    vae_history += train_vae(vae, frames, s, NUM_FRAMES, s.vae_video_batch, s.vae_video_steps, "videos")
    vae.requires_grad_(False)
    t = lap("vae", t)

    log("latents: every clip encoded once; latent statistics; prompt embeddings")
    raw = encode_latents(vae, frames)
    set_latent_statistics(vae, raw)
    pipe = cosmos.PIPELINE_CLASS(**components, safety_checker=cosmos.NoGuardrail())
    mean, inv_std = cosmos.latent_normalisers(pipe, raw.device, raw.dtype)
    latents = (raw - mean) * inv_std
    embeds = torch.cat([cosmos.encode_prompts(pipe, captions[i : i + 64]) for i in range(0, len(captions), 64)])
    recon_psnr = reconstruction_psnr(vae, held_frames)
    log(f"vae held-out reconstruction PSNR {recon_psnr:.2f} dB")
    t = lap("latents", t)

    log(f"dit: {sum(p.numel() for p in transformer.parameters()):,} parameters, {s.dit_steps} steps")
    dit_history = train_dit(transformer, latents, embeds.float(), s)
    t = lap("dit", t)

    tiny.save_pipeline(components, out_dir, spec)
    timings["pretraining"] = round(time.perf_counter() - t_start, 1)
    log(f"saved to {out_dir}; scoring on {s.held_out_clips} held-out shapes clips")
    held_out_dir = work_dir / "shapes_held_out"
    random_dir = tiny.build_tiny(work_dir / "random-init", spec)
    scores = {"pretrained": score(out_dir, held_out_dir, s.held_out_clips),
              "random_init": score(random_dir, held_out_dir, s.held_out_clips)}
    t = lap("scoring", t)
    record = {
        "settings": asdict(s), "spec": asdict(spec), "timings_s": timings,
        "vae": {"history": vae_history, "held_out_psnr_db": round(recon_psnr, 2),
                "latents_mean": vae.config.latents_mean, "latents_std": vae.config.latents_std},
        "dit": {"history": dit_history}, "held_out_scores": scores, "prompt_separation": prompt_separation(pipe),
        "parameters": {name: sum(p.numel() for p in components[name].parameters())
                       for name in ("transformer", "vae", "text_encoder")},
        "machine": machine(), "command": " ".join(["python -m trainer", *sys.argv[1:]]),
    }  # fmt: skip
    (out_dir / "pretraining.json").write_text(json.dumps(record, indent=2) + "\n")
    (out_dir / "PRETRAINING.md").write_text(report_markdown(record))
    log(f"done in {timings['pretraining']:.0f} s (+ {timings['scoring']:.0f} s scoring)")
    return record


def report_markdown(r: dict) -> str:
    s, t, m = r["settings"], r["timings_s"], r["machine"]
    pre, rnd = r["held_out_scores"]["pretrained"], r["held_out_scores"]["random_init"]
    ref = pre["reference"]
    vae_last = [h for h in r["vae"]["history"] if h["step"] == s["vae_video_steps"] and h["phase"] == "videos"][-1]
    dit_first, dit_last = r["dit"]["history"][0], r["dit"]["history"][-1]
    params = r["parameters"]
    separation = "\n".join(
        f"| {p['a']} | {p['b']} | {p['relative_distance']:.3f} | {p['largest_token_distance']:.2f} |"
        for p in r["prompt_separation"]
    )
    return f"""# How the tiny base model was pre-trained

Made by `{r['command']}` (`trainer/tinyworld/pretrain.py`); every number below is from that run
(`pretraining.json` holds the full record). Rebuild with the same command: the same seed and thread count on
the same machine gives the same weights.

## Data
The shapes world (`trainer.tinyworld.sample_datasets.make_shapes_dataset`): {s['clips']} clips, seed {s['seed']}, {SIZE}x{SIZE},
{NUM_FRAMES} frames at 8 fps, 1-3 circles, squares and triangles moving, bouncing, growing or shrinking, each
clip captioned with what its shapes do. No robot, table or bowl: the robot world is the fine-tuning task.
Scores below are on {s['held_out_clips']} held-out shapes clips (dataset seed {s['seed'] + HELD_OUT_SEED_OFFSET}).

## Components ({sum(params.values()):,} parameters)
| component | parameters | how it was made |
|---|---:|---|
| VAE (`AutoencoderKLWan`, base_dim {r['spec']['vae_base_dim']}, z_dim 16, 8x/4x) | {params['vae']:,} | trained: images ({s['vae_image_steps']} steps x {s['vae_image_batch']} single frames), then videos ({s['vae_video_steps']} steps x {s['vae_video_batch']} clips of {NUM_FRAMES} frames); {s['vae_crop']}x{s['vae_crop']} crops, L1 + MSE + {s['vae_kl_weight']:g} KL, AdamW lr {s['vae_lr']:g} one-cycle |
| DiT (`CosmosTransformer3DModel`, {r['spec']['dit_layers']} layers, {r['spec']['dit_heads']} heads x {r['spec']['dit_head_dim']}) | {params['transformer']:,} | trained, every parameter: {s['dit_steps']} steps x {s['dit_batch']} clips, `cosmos.flow_matching_loss` (the fine-tuning objective: logit-normal sigma with shift 5, 1 or 2 clean condition frames, {s['cfg_dropout']:g} prompt dropout), AdamW lr {s['dit_lr']:g}, warm-up {s['dit_warmup']}, cosine to 10 % |
| text encoder (`Qwen2_5_VLForConditionalGeneration`, {r['spec']['text_layers']} layers x {r['spec']['text_hidden']}) | {params['text_encoder']:,} | random, seed {r['spec']['seed']}, fixed |
| tokenizer, scheduler | - | byte-level BPE from `trainer/tinyworld/model.py`; the real `UniPCMultistepScheduler` config |

## Results
| | value |
|---|---|
| VAE training loss at the end (MSE / L1, [-1, 1] pixels) | {vae_last['mse']:.4f} / {vae_last['l1']:.4f} |
| VAE held-out reconstruction PSNR, 17 frames | {r['vae']['held_out_psnr_db']:.2f} dB |
| DiT training loss, first / last 100 steps | {dit_first['loss']:.4f} / {dit_last['loss']:.4f} |
| held-out validation loss, pretrained / random init | {pre['base']['val_loss']:.4f} / {rnd['base']['val_loss']:.4f} |
| generated vs real (frames 1-16 from frame 0 + caption) PSNR, pretrained / random init | {pre['base']['psnr']:.2f} / {rnd['base']['psnr']:.2f} dB |
| the same, SSIM | {pre['base']['ssim']:.3f} / {rnd['base']['ssim']:.3f} |
| for scale: VAE round trip of the real clip / the first frame held still | {ref['vae_psnr']:.2f} / {ref['static_psnr']:.2f} dB |

Generation settings: {pre['settings']['steps']} steps, guidance {pre['settings']['guidance']}, seed {pre['settings']['seed']}
(`trainer.evaluate`).

Prompt embeddings (after the pipeline's per-layer normalisation) of captions that differ in one word:

| caption a | caption b | relative distance | largest per-token distance |
|---|---|---:|---:|
{separation}

## Time and machine
Data {t['data']:.0f} s, VAE {t['vae']:.0f} s, latents and prompts {t['latents']:.0f} s, DiT {t['dit']:.0f} s:
**{t['pretraining'] / 60:.1f} minutes** in all (scoring afterwards {t['scoring']:.0f} s), on {m['cpu_count']} CPU cores
shared with other work, {m['torch_threads']} torch thread, {m['processor']}, {m['platform']}; Python {m['python']},
torch {m['torch']}, diffusers {m['diffusers']}, transformers {m['transformers']}.
"""


def machine() -> dict:
    import diffusers
    import transformers

    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": __import__("os").cpu_count(), "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": torch.__version__, "diffusers": diffusers.__version__,
            "transformers": transformers.__version__}  # fmt: skip
