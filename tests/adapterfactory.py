"""A saved tiny adapter with random (non-zero) weights, and a fixed transformer input to compare outputs on."""

from __future__ import annotations

from pathlib import Path

import torch


def make_adapter(out: Path, adapter: str = "lora", rank: int = 4, alpha: float = 8.0, seed: int = 0):
    """Saved exactly as the trainer saves it; alpha != rank so a lost scale would show. Returns the folder and
    the pipeline whose transformer still carries the adapter in memory."""
    from trainer.adapters import attach, make_card, save_adapter, trainable_parameters
    from trainer.cosmos import load_pipeline, model_identity
    from trainer.spec.config import TrainConfig

    cfg = TrainConfig(
        data="sample", name="pick", adapter=adapter, rank=rank, alpha=alpha, height=64, width=64, num_frames=17
    )
    pipe = load_pipeline("tiny")
    config = attach(pipe.transformer, cfg)
    torch.manual_seed(seed)
    for param in trainable_parameters(pipe.transformer):
        param.data.add_(torch.randn_like(param) * 0.2)  # DoRA magnitudes start at the weight norms: perturb them
    card = make_card(cfg, model_identity("tiny", None), {"clips": 1, "digest": "x"}, steps=3, final_loss=0.5)
    save_adapter(out, pipe.transformer, config, card)
    return out, pipe


def transformer_inputs(transformer, seed: int = 0) -> dict:
    """One fixed denoising call's inputs at 2 latent frames of 32x32 pixels (the first frame conditions)."""
    g = torch.Generator().manual_seed(seed)
    c, tc = transformer.config.out_channels, transformer.config
    text_dim = tc.crossattn_proj_in_channels if tc.use_crossattn_projection else tc.text_embed_dim
    t, h, w = 2, 4, 4
    mask = torch.zeros(1, 1, t, h, w)
    mask[:, :, 0] = 1
    return {
        "hidden_states": torch.randn(1, c, t, h, w, generator=g),
        "condition_mask": mask,
        "timestep": torch.tensor([1e-4, 0.7]).view(1, 1, t, 1, 1),
        "encoder_hidden_states": torch.randn(1, 8, text_dim, generator=g),
        "padding_mask": torch.zeros(1, 1, h * 8, w * 8),
        "return_dict": False,
    }


@torch.no_grad()
def forward(transformer, inputs: dict) -> torch.Tensor:
    return transformer(**inputs)[0].float()
