"""No 8x assumption: the VAE's compression comes from its config, for the real model, the tiny base and any other.

A random tiny pipeline with a 4x-spatial VAE and 4x4 patches (the layout of the pretrained tiny base) and one
with the real model's 8x VAE and 2x2 patches must both train, give pixel-sized padding masks, and count the same
tokens; a VAE of yet another factor changes every count that depends on it.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from conftest import read_events, run_trainer, tiny_config, write_config

from bench.flops import dit_flops
from trainer import cosmos
from trainer.tinyworld import model as tiny

FOUR_X = replace(tiny.TinySpec(), vae_spatial=4, dit_patch=4)
EIGHT_X = tiny.TinySpec()


def _pipe(spec):
    return cosmos.PIPELINE_CLASS(**tiny.build_components(spec), safety_checker=cosmos.NoGuardrail())


class _PaddingMaskSpy(torch.nn.Module):
    """The transformer with its padding mask recorded, and one frozen parameter for the loss's dtype probe."""

    def __init__(self, transformer):
        super().__init__()
        self.frozen = torch.nn.Parameter(torch.zeros(1), requires_grad=False)
        self.transformer, self.masks = transformer, []

    def forward(self, **kwargs):
        self.masks.append(tuple(kwargs["padding_mask"].shape))
        return self.transformer(**kwargs)


@pytest.mark.parametrize(("spec", "factors"), [(FOUR_X, (4, 4)), (EIGHT_X, (4, 8))])
def test_scale_factors_come_from_the_vae_config_and_size_the_padding_mask(spec, factors):
    pipe = _pipe(spec)
    assert cosmos.vae_scale_factors(pipe.vae) == factors
    temporal, spatial = factors
    video = torch.zeros(1, 3, 9, 64, 64)
    clean = cosmos.encode_video(pipe, video)
    assert clean.shape == (1, 16, cosmos.latent_frames(9, temporal), 64 // spatial, 64 // spatial)
    spy = _PaddingMaskSpy(pipe.transformer)
    draw = cosmos.draw_flow_batch(clean.shape, {1: 1.0}, 0.0, torch.Generator().manual_seed(0))
    embeds = torch.zeros(1, 8, pipe.transformer.config.crossattn_proj_in_channels)
    loss = cosmos.flow_matching_loss(spy, clean, embeds, draw, 1e-4, spatial_scale=spatial)
    assert torch.isfinite(loss) and spy.masks == [(1, 1, 64, 64)]


def test_token_counts_follow_the_vae_and_patch():
    four = dict(tiny.build_components(FOUR_X)["transformer"].config)
    eight = dict(tiny.build_components(EIGHT_X)["transformer"].config)
    # a 4x VAE with 4x4 patches keeps the 8x VAE's token count with 2x2 patches: 5 x 4 x 4 for 64x64x17
    assert dit_flops(four, 17, 64, 64, 4, (4, 4))["tokens"] == dit_flops(eight, 17, 64, 64, 4, (4, 8))["tokens"] == 80
    # a 16x VAE (Wan 2.2's) with the same patches: a quarter of the tokens
    assert dit_flops(eight, 17, 64, 64, 4, (4, 16))["tokens"] == 20
    pipe = _pipe(replace(FOUR_X, dit_patch=2))
    assert cosmos.video_shape_problem(pipe, 72, 72, 17) is None  # 4x VAE, 2x2 patches: multiples of 8
    assert cosmos.video_shape_problem(pipe, 68, 68, 17) == (
        "height and width must be multiples of 8 for this model (got 68x68)"
    )
    assert cosmos.video_shape_problem(pipe, 64, 64, 18) == "num_frames must be 4k+1 for this model (got 18)"


def test_a_4x_vae_trains_through_the_latent_cache(tmp_path, clip_dataset):
    model = tiny.build_tiny(tmp_path / "tiny-4x", FOUR_X)
    raw = tiny_config(clip_dataset, tmp_path / "runs", model=str(model), max_steps=2, cache="auto")
    result = run_trainer("train", "--config", str(write_config(tmp_path / "run.json", raw)))
    assert result.returncode == 0, result.stderr[-3000:]
    steps = [e for e in read_events(tmp_path / "runs" / "run") if e["event"] == "step"]
    assert [e["step"] for e in steps] == [1, 2]
