"""PRETRAINING.md: the tiny base's pre-training record (pretraining.json) as a page a person reads."""

from __future__ import annotations

import os
import platform

from trainer.pretrain_tiny.data import NUM_FRAMES, SIZE


def machine() -> dict:
    import diffusers
    import torch
    import transformers

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
    }


def _machine_line(m: dict) -> str:
    where = (
        f"one {m['gpu']} GPU and {m['cpu_count']} CPU cores"
        if m.get("gpu")
        else (f"{m['cpu_count']} CPU cores shared with other work, {m['torch_threads']} torch thread")
    )
    return (
        f"{where}, {m['processor']}, {m['platform']}; Python {m['python']}, torch {m['torch']}, "
        f"diffusers {m['diffusers']}, transformers {m['transformers']}"
    )


def _vae_data(s: dict) -> str:
    if s.get("vae_world", "shapes") == "robot":
        return (
            f"the frames of {s['vae_clips']} robot-world clips of dataset seed {s['vae_seed']}, never their "
            "captions (the sample dataset is seed 0 and the probe below seed 1: no clip in common)"
        )
    if s.get("vae_world", "shapes") == "strokes":
        return (
            f"the strokes world (`trainer.tinyworld.strokes_world`): {s['vae_clips']} clips of discs, rings, "
            "boxes, triangles, sticks and jointed sticks in any colour on plain or graded backgrounds"
        )
    return "the shapes clips above"


def _dit_data(s: dict) -> str:
    task = "the robot world's task (which arm moves, as the caption names it) is the fine-tuning task."
    if not s.get("dit_robot_clips"):
        return f"The DiT saw these shapes clips only: no robot, table or bowl and no caption naming an arm; {task}"
    return (
        f"The DiT saw these shapes clips and {s['dit_robot_clips']} robot-world clips of dataset seed "
        f'{s["vae_seed"]} in which either arm fetches a target anywhere on the table, captioned "A robot arm '
        f"picks up the <colour> <object> and places it in the bowl.\": the robot world's look and motion, never a "
        f"caption naming an arm nor an object's side giving the arm away; {task}"
    )


def _scores(r: dict) -> str:
    if not r.get("held_out_scores"):
        return "| held-out scores | not measured (pre-trained with `score: false`) |\n"
    pre, rnd = r["held_out_scores"]["pretrained"], r["held_out_scores"]["random_init"]
    ref = pre["reference"]
    return (
        f"| held-out validation loss, pretrained / random init | {pre['base']['val_loss']:.4f} / "
        f"{rnd['base']['val_loss']:.4f} |\n"
        f"| generated vs real (frames 1-16 from frame 0 + caption) PSNR, pretrained / random init | "
        f"{pre['base']['psnr']:.2f} / {rnd['base']['psnr']:.2f} dB |\n"
        f"| the same, SSIM | {pre['base']['ssim']:.3f} / {rnd['base']['ssim']:.3f} |\n"
        f"| for scale: VAE round trip of the real clip / the first frame held still | {ref['vae_psnr']:.2f} / "
        f"{ref['static_psnr']:.2f} dB |\n\n"
        f"Generation settings: {pre['settings']['steps']} steps, guidance {pre['settings']['guidance']}, seed "
        f"{pre['settings']['seed']} (`trainer.evaluate`).\n"
    )


def report_markdown(r: dict) -> str:
    s, t, m = r["settings"], r["timings_s"], r["machine"]
    vae_last = [h for h in r["vae"]["history"] if h["phase"] == "videos"][-1]
    dit_first, dit_last = r["dit"]["history"][0], r["dit"]["history"][-1]
    params = r["parameters"]
    probe = r["vae"].get("robot_probe")
    probe_row = (
        ""
        if not probe
        else (
            f"| VAE round trip of {probe['clips']} robot clips (dataset seed {probe['dataset_seed']}, never trained on): "
            f"PSNR / arm the scorer still names | {probe['round_trip_psnr_db']:.2f} dB / "
            f"{probe['arm_named_after_round_trip']} of {probe['clips']} |\n"
        )
    )
    fitted = (
        ""
        if not r.get("fitted_to_seconds")
        else (
            f" The step counts were fitted to {r['fitted_to_seconds']:.0f} s of training from measured step times; "
            "the command below with these counts rebuilds the same run."
        )
    )
    separation = "\n".join(
        f"| {p['a']} | {p['b']} | {p['relative_distance']:.3f} | {p['largest_token_distance']:.2f} |"
        for p in r["prompt_separation"]
    )
    scoring = f" (scoring afterwards {t['scoring']:.0f} s)" if "scoring" in t else ""
    reused = (
        " (trained once by an earlier run with the same VAE settings, reused through `--work-dir`)"
        if r["vae"].get("reused_from_work_dir")
        else ""
    )
    return f"""# How the tiny base model was pre-trained

Made by `{r["command"]}` (`trainer/pretrain_tiny/`); every number below is from that run
(`pretraining.json` holds the full record).{fitted} The same seed and settings on the same machine give the
same weights.

## Data
The shapes world (`trainer.tinyworld.shapes_world`, the clips `make_shapes_dataset` writes, rendered in
memory): {s["clips"]} clips, seed {s["seed"]}, {SIZE}x{SIZE}, {NUM_FRAMES} frames at 8 fps, 1-3 circles,
squares and triangles moving, bouncing, growing or shrinking, each clip captioned with what its shapes do. The
VAE learned from {_vae_data(s)}. {_dit_data(s)} Scores below are on {s["held_out_clips"]} held-out shapes
clips (dataset seed {s["seed"] + 1}).

## Components ({sum(params.values()):,} parameters)
| component | parameters | how it was made |
|---|---:|---|
| VAE (`AutoencoderKLWan`, base_dim {r["spec"]["vae_base_dim"]}, z_dim 16, {r["spec"].get("vae_spatial", 8)}x space / 4x time) | {params["vae"]:,} | trained: images ({s["vae_image_steps"]} steps x {s["vae_image_batch"]} single frames), then videos ({s["vae_video_steps"]} steps x {s["vae_video_batch"]} clips of {NUM_FRAMES} frames); {min(s["vae_crop"], SIZE)}x{min(s["vae_crop"], SIZE)} crops, L1 + MSE + {s["vae_kl_weight"]:g} KL, AdamW lr {s["vae_lr"]:g} one-cycle |
| DiT (`CosmosTransformer3DModel`, {r["spec"]["dit_layers"]} layers, {r["spec"]["dit_heads"]} heads x {r["spec"]["dit_head_dim"]}, patch 1x{r["spec"].get("dit_patch", 2)}x{r["spec"].get("dit_patch", 2)}) | {params["transformer"]:,} | trained, every parameter: {s["dit_steps"]} steps x {s["dit_batch"]} clips, `cosmos.flow_matching_loss` (the fine-tuning objective: logit-normal sigma with shift 5, 1 or 2 clean condition frames, {s["cfg_dropout"]:g} prompt dropout), AdamW lr {s["dit_lr"]:g}, warm-up {s["dit_warmup"]}, cosine to 10 % |
| text encoder (`Qwen2_5_VLForConditionalGeneration`, {r["spec"]["text_layers"]} layers x {r["spec"]["text_hidden"]}) | {params["text_encoder"]:,} | random, seed {r["spec"]["seed"]}, fixed |
| tokenizer, scheduler | - | byte-level BPE from `trainer/tinyworld/model.py`; the real `UniPCMultistepScheduler` config |

## Results
| | value |
|---|---|
| VAE training loss at the end (MSE / L1, [-1, 1] pixels) | {vae_last["mse"]:.4f} / {vae_last["l1"]:.4f} |
| VAE held-out reconstruction PSNR, 17 frames | {r["vae"]["held_out_psnr_db"]:.2f} dB |
{probe_row}| DiT training loss, first / last 100 steps | {dit_first["loss"]:.4f} / {dit_last["loss"]:.4f} |
{_scores(r)}
Prompt embeddings (after the pipeline's per-layer normalisation) of captions that differ in one word:

| caption a | caption b | relative distance | largest per-token distance |
|---|---|---:|---:|
{separation}

## Time and machine
Data {t["data"]:.0f} s, VAE {t["vae"]:.0f} s{reused}, latents and prompts {t["latents"]:.0f} s, DiT {t["dit"]:.0f} s:
**{t["pretraining"] / 60:.1f} minutes** in all{scoring}, on {_machine_line(m)}.
"""
