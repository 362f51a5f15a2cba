"""GPU-only checks (`pytest -m gpu`; bench/gpu.sh runs them): bf16 training steps on CUDA, and generation's offload
path on CUDA rendering the full mode's video with less memory. Each skips, saying why, where no GPU is visible."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import read_events, run_trainer, tiny_config, write_clip_dataset, write_config

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (bench/gpu.sh runs these)"),
]


def test_bf16_training_steps_on_the_gpu(tmp_path):
    data = write_clip_dataset(tmp_path / "clips", clips=2)
    cfg = tiny_config(data, tmp_path / "runs", mixed_precision="bf16", gradient_checkpointing=True, cache="auto")
    result = run_trainer("train", "--config", str(write_config(tmp_path / "c.json", cfg)))
    assert result.returncode == 0, result.stderr[-3000:]
    losses = [e["loss"] for e in read_events(tmp_path / "runs" / "run") if e["event"] == "step"]
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses)


def test_offload_renders_the_full_modes_video_with_less_memory(tmp_path):
    from trainer.generate import GenerateRequest, Renderer

    first = write_clip_dataset(tmp_path / "clips", clips=1) / "videos" / "clip00.mp4"
    renderer = Renderer("tiny", guardrail=False, precision="bf16", device="cuda")
    frames, peaks = {}, {}
    for mode in ("full", "offload"):
        request = GenerateRequest(
            prompt="A red box slides down.",
            out_dir=str(tmp_path / mode),
            image=str(first),
            steps=2,
            height=64,
            width=96,
            num_frames=9,
            memory=mode,
        )
        renderer.prepare(request)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        frames[mode] = renderer.render_frames(request).frames["base"].astype(int)
        peaks[mode] = torch.cuda.max_memory_allocated()
    assert np.abs(frames["offload"] - frames["full"]).max() <= 2  # the same video, up to bf16 kernel choices
    assert peaks["offload"] < peaks["full"]


def test_validation_loss_under_offload_runs_on_the_gpu():
    from test_memory_modes import _validation_losses_agree

    _validation_losses_agree(torch.device("cuda"))
