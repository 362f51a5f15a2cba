"""Generation's memory modes (full, offload: diffusers' model CPU offload and tiled/sliced VAE decode) render the
same video, and `auto` picks by the estimate; on the CPU with the tiny pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import write_clip_dataset

from trainer import memory_modes
from trainer.generate import GenerateRequest, Renderer
from trainer.spec import memory
from trainer.spec.generate_settings import GenerateSettings


@pytest.fixture(scope="module")
def renderer():
    return Renderer("tiny", guardrail=False, precision="bf16", device="cpu")


@pytest.fixture(scope="module")
def first_frame(tmp_path_factory):
    return str(write_clip_dataset(tmp_path_factory.mktemp("clips"), clips=1) / "videos" / "clip00.mp4")


def _render(renderer, first_frame, tmp_path, mode: str) -> np.ndarray:
    request = GenerateRequest(
        prompt="A red box slides down.",
        out_dir=str(tmp_path),
        image=first_frame,
        seed=3,
        steps=2,
        guidance=1.5,
        height=64,
        width=96,
        num_frames=9,
        memory=mode,
    )
    return renderer.render_frames(request).frames["base"]


def test_offload_renders_the_full_modes_video(renderer, first_frame, tmp_path):
    full = _render(renderer, first_frame, tmp_path, "full")
    assert renderer.memory_mode == "full" and not getattr(renderer.pipe, "_all_hooks", None)
    offload = _render(renderer, first_frame, tmp_path, "offload")
    assert renderer.memory_mode == "offload" and renderer.pipe._all_hooks  # accelerate's hooks, via diffusers
    assert renderer.pipe.vae.use_tiling and renderer.pipe.vae.use_slicing
    np.testing.assert_array_equal(offload, full)
    again = _render(renderer, first_frame, tmp_path, "full")  # and back: the hooks removed, tiling off
    assert not renderer.pipe._all_hooks and not renderer.pipe.vae.use_tiling
    np.testing.assert_array_equal(again, full)


@torch.no_grad()
def test_tiled_decode_at_the_shipped_tile_matches_within_bf16_tolerance(renderer):
    """offload's tiled and sliced decode against the plain decode, on a video wider than one tile (256 pixels,
    so two tiles blended over 64 pixels): the same frames up to bf16 rounding."""
    from trainer.cosmos import vae_scale_factors

    vae = renderer.pipe.vae
    _, s = vae_scale_factors(vae)
    latents = torch.randn(2, 16, 2, 64 // s, 320 // s, generator=torch.Generator().manual_seed(0), dtype=vae.dtype)
    plain = vae.decode(latents, return_dict=False)[0]
    vae.enable_tiling()
    vae.enable_slicing()
    try:
        tiled = vae.decode(latents, return_dict=False)[0]
    finally:
        vae.disable_tiling()
        vae.disable_slicing()
    assert tiled.shape == plain.shape == (2, 3, 5, 64, 320)
    diff = (tiled.float() - plain.float()).abs().flatten()  # frames in [-1, 1]; bf16 keeps 8 bits of mantissa
    q99 = torch.quantile(diff[:: max(1, diff.numel() // 100_000)], 0.99)
    assert diff.mean() < 0.01 and q99 < 0.05 and diff.max() < 0.3, (diff.mean(), q99, diff.max())


def test_auto_picks_full_where_it_fits_and_offload_where_it_does_not():
    real = GenerateSettings(model="nvidia/Cosmos-Predict2.5-2B", precision="bf16")  # 704x1280x93
    full = memory.generation_estimate(real, "full")
    offload = memory.generation_estimate(real, "offload")
    assert offload.total < full.total
    assert memory.pick_generation_mode(real, 80.0) == "full"
    assert memory.pick_generation_mode(real, 24.0) == "offload" and offload.fits(24.0)
    assert memory.pick_generation_mode(real, None) == "full"  # no GPU: nothing to fit
    assert memory_modes.resolve(real, torch.device("cpu")) == "full"
    assert memory_modes.resolve(GenerateSettings(memory="offload"), torch.device("cpu")) == "offload"


def test_an_unknown_mode_is_refused_by_name():
    problems = GenerateSettings(memory="half").problems()
    assert [str(p) for p in problems] == ["memory: must be one of auto, full, offload (got 'half')"]


def test_validation_loss_is_the_same_with_the_weights_offloaded():
    """evaluate's validation loss calls the transformer directly: under offload it runs on the hook's device."""
    _validation_losses_agree(torch.device("cpu"))


def _validation_losses_agree(device: torch.device) -> None:
    from trainer import cosmos
    from trainer.evaluate import validation_loss

    pipe = cosmos.load_pipeline("tiny", dtype=torch.bfloat16)
    generator = torch.Generator().manual_seed(0)
    embeds = torch.randn(1, 512, pipe.transformer.config.crossattn_proj_in_channels, generator=generator)
    encoded = [(torch.randn(1, 16, 3, 8, 8, generator=generator), embeds)]
    losses = {}
    for mode in ("full", "offload"):
        memory_modes.apply(pipe, mode, device)
        losses[mode] = validation_loss(pipe.transformer, encoded, 0, cosmos.vae_scale_factors(pipe.vae)[1])
    assert losses["offload"] == pytest.approx(losses["full"], rel=1e-3)
