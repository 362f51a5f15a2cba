"""What the benchmarks run on: the full-size Cosmos Predict 2.5 architecture with random weights (bench/configs;
nothing is downloaded) and synthetic clips one training window long. Shared by bench.py and real_cpu.py."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from trainer import cosmos
from trainer.batches import Clip, LiveBatches, clip_video
from trainer.datasets import sha256_file
from trainer.video import write_video

CONFIGS = Path(__file__).resolve().parent / "configs"
PROMPT = "The robot arm is performing a task. A gripper picks up the red cube and places it in the bowl."


# --------------------------------------------------------------------------------------------- model
def build_full_pipeline(device: torch.device, dtype: torch.dtype, configs: Path = CONFIGS, seed: int = 0):
    """The full-size Cosmos Predict 2.5 pipeline from bench/configs with random weights, built on `device`
    (on "meta" it allocates nothing: tests count its parameters)."""
    from diffusers import AutoencoderKLWan, CosmosTransformer3DModel, UniPCMultistepScheduler
    from diffusers.utils import logging as diffusers_logging
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    from trainer.tinyworld.model import build_tokenizer

    def config(name):
        return {k: v for k, v in json.loads((configs / f"{name}.json").read_text()).items() if k != "_class_name"}

    torch.manual_seed(seed)
    quiet = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()  # `.to(dtype)` warns about fp32 modules this config does not have
    with torch.device(device):
        transformer = CosmosTransformer3DModel.from_config(config("transformer")).to(dtype).eval()
        vae = AutoencoderKLWan.from_config(config("vae")).to(dtype).eval()
        text_config = Qwen2_5_VLConfig.from_dict(config("text_encoder"))
        text_encoder = Qwen2_5_VLForConditionalGeneration._from_config(text_config, dtype=dtype).eval()
    diffusers_logging.set_verbosity(quiet)
    # Any tokenizer gives the same cost: every prompt is padded to 512 tokens. The tiny one needs no download.
    pipe = cosmos.PIPELINE_CLASS(
        transformer=transformer,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=build_tokenizer(400),
        scheduler=UniPCMultistepScheduler.from_config(config("scheduler")),
        safety_checker=cosmos.NoGuardrail(),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def configs_digest(configs: Path) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(configs.glob("*.json")))).hexdigest()[:16]


# --------------------------------------------------------------------------------------------- data
def write_clips(folder: Path, count: int, frames: int, height: int, width: int) -> tuple[list[Clip], dict]:
    """Synthetic clips of exactly `frames` frames (one training window each) and their fingerprint."""
    (folder / "videos").mkdir(parents=True, exist_ok=True)
    clips, items = [], []
    yy, xx = np.mgrid[0:height, 0:width]
    for i in range(count):
        video = np.empty((frames, height, width, 3), np.uint8)
        for t in range(frames):
            phase = (xx + 3 * t + 40 * i) / width * 2 * np.pi
            video[t] = np.stack(
                [
                    127 + 100 * np.sin(phase),
                    127 + 100 * np.cos(yy / height * 6 + t / 5),
                    np.full_like(phase, 60 * i % 255),
                ],
                -1,
            ).astype(np.uint8)
        path = folder / "videos" / f"clip{i}.mp4"
        write_video(path, video, 24)
        clips.append(Clip(f"clip{i}", path, f"{PROMPT} Take {i}.", frames))
        items.append({"key": f"clip{i}", "video_sha256": sha256_file(path)})
    return clips, {"items": items}


class PreloadedLiveBatches(LiveBatches):
    """LiveBatches with each clip decoded once (the clips are one window long): encodes every step, decodes never."""

    def __init__(self, cfg, pipe, clips, device):
        super().__init__(cfg, pipe, clips, device)
        self.pixels = [clip_video(clip, 0, cfg) for clip in clips]

    def get(self, indices, epoch):
        clean = cosmos.encode_video(self.pipe, torch.stack([self.pixels[i] for i in indices]).to(self.device))
        embeds = cosmos.encode_prompts(self.pipe, [self.clips[i].caption for i in indices], self.device)
        return clean, embeds.float()
