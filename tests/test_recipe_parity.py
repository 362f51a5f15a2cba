"""The trainer's numbers are the recipe's: the loss definition, and the gradient norm it logs every step."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import read_events, run_trainer, tiny_config, write_config

from trainer import adapters, cosmos, speed
from trainer.batches import LiveBatches, load_clips
from trainer.data_plan import DataPlan, step_generator
from trainer.spec.config import config_from_dict

CPU = torch.device("cpu")


def recipe_loss(
    transformer, clean, embeds, noise, sigma, cond_frames, drop, cond_timestep, spatial_scale
) -> torch.Tensor:
    """The recipe's objective written out from the reference notes (§3), one sample at a time: x_t = sigma*noise +
    (1-sigma)*clean, the first k latent frames clean with timestep 1e-4, target noise - clean, and the squared
    error of the non-conditioned frames averaged over ALL latent elements (conditioned ones count as 0)."""
    total, elements = 0.0, 0
    for i in range(clean.shape[0]):
        x0, eps, s, k = clean[i : i + 1], noise[i : i + 1], float(sigma[i]), int(cond_frames[i])
        _, c, t, h, w = x0.shape
        mask = torch.zeros(1, 1, t, h, w)
        mask[:, :, :k] = 1.0
        x_t = mask * x0 + (1 - mask) * (s * eps + (1 - s) * x0)
        timestep = torch.full((1, 1, t, 1, 1), s)
        timestep[:, :, :k] = cond_timestep
        context = torch.zeros_like(embeds[i : i + 1]) if drop[i] else embeds[i : i + 1]
        pred = transformer(
            hidden_states=x_t,
            condition_mask=mask,
            timestep=timestep,
            encoder_hidden_states=context,
            padding_mask=torch.zeros(1, 1, h * spatial_scale, w * spatial_scale),
            return_dict=False,
        )[0]
        total = total + (((pred - (eps - x0)) ** 2) * (1 - mask)).sum()
        elements += x0.numel()
    return total / elements


def test_loss_is_the_recipes_mean_over_all_latent_elements():
    pipe = cosmos.load_pipeline("tiny")
    transformer = pipe.transformer.requires_grad_(False)
    _, spatial_scale = cosmos.vae_scale_factors(pipe.vae)
    generator = torch.Generator().manual_seed(3)
    clean = torch.randn(2, 16, 5, 8, 8, generator=generator)
    embeds = torch.randn(2, 32, transformer.config.crossattn_proj_in_channels, generator=generator)
    draw = cosmos.FlowBatch(
        noise=torch.randn(clean.shape, generator=generator),
        sigma=torch.tensor([0.3, 0.8]),
        cond_frames=torch.tensor([1, 2]),
        drop_prompt=torch.tensor([False, True]),
    )
    with torch.no_grad():
        loss = cosmos.flow_matching_loss(transformer, clean, embeds, draw, 1e-4, spatial_scale=spatial_scale)
        expected = recipe_loss(
            transformer, clean, embeds, draw.noise, draw.sigma, draw.cond_frames, draw.drop_prompt, 1e-4, spatial_scale
        )
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    # Not the mean over the denoised elements only (4 + 3 of 5 frames per sample): that would be 10/7 larger.
    assert abs(loss.item() - expected.item() * 10 / 7) > 0.1 * loss.item()


def _first_step_grad_norm(cfg) -> float:
    """Step 1 of `train` recomputed here from the same seeds: the gradient norm before any clipping."""
    pipe = cosmos.load_pipeline(cfg.model)
    pipe.vae.requires_grad_(False)
    pipe.text_encoder.requires_grad_(False)
    torch.manual_seed(cfg.seed)  # what accelerate's set_seed does for the adapter's initial weights
    adapters.attach(pipe.transformer, cfg)
    speed.apply(pipe.transformer, cfg, CPU)
    params = adapters.trainable_parameters(pipe.transformer)
    clips, _ = load_clips(cfg, None)
    plan = DataPlan(len(clips), 1, 0, cfg.batch_size, cfg.gradient_accumulation, cfg.seed)
    epoch, indices = plan.micro_batch(1, 0)
    clean, embeds = LiveBatches(cfg, pipe, clips, CPU).get(indices, epoch)
    draw = cosmos.draw_flow_batch(
        clean.shape, cfg.conditional_frames, cfg.cfg_dropout, step_generator(cfg.seed, 1, 0, 0)
    )
    cosmos.flow_matching_loss(
        pipe.transformer,
        clean,
        embeds,
        draw,
        cfg.conditional_frame_timestep,
        spatial_scale=cosmos.vae_scale_factors(pipe.vae)[1],
    ).backward()
    return math.sqrt(sum(float(p.grad.double().pow(2).sum()) for p in params if p.grad is not None))


@pytest.mark.parametrize("max_grad_norm", [1e-3, 0.0])
def test_grad_norm_is_logged_before_clipping_every_step(tmp_path, clip_dataset, max_grad_norm):
    """Clipped hard (1e-3) or not at all (0): the logged norm is the gradient's own, recomputed independently."""
    raw = tiny_config(clip_dataset, tmp_path / "runs", name="g", max_steps=2, max_grad_norm=max_grad_norm)
    result = run_trainer("train", "--config", str(write_config(tmp_path / "g.json", raw)))
    assert result.returncode == 0, result.stderr[-3000:]
    steps = [e for e in read_events(tmp_path / "runs" / "g") if e["event"] == "step"]
    assert len(steps) == 2 and all(math.isfinite(e["grad_norm"]) and e["grad_norm"] > 0 for e in steps)
    expected = _first_step_grad_norm(config_from_dict(raw))
    assert expected > 10 * 1e-3  # so the 1e-3 run really clipped, and its logged value is still the raw norm
    assert steps[0]["grad_norm"] == pytest.approx(expected, rel=1e-4)
