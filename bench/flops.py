"""Model FLOPs of the Cosmos DiT (for MFU), counted from the transformer config. A multiply-add is 2 FLOPs.

N = T x H/(s·p) x W/(s·p) video tokens (latent T = (F-1)//t + 1; the VAE's t and s, 4 and 8 for Cosmos Predict
2.5's, come from its config; p x p patches from the transformer's), D = heads x head_dim,
S = 512 text tokens, E = text width into the blocks (1024), M = mlp_ratio x D, a = adaln_lora_dim, r = LoRA rank.

Per block, forward:
    linear     2N(4D² + 2D² + 2DM)   self-attention q,k,v,o; cross-attention q,o; feed-forward
             + 2S·2ED                cross-attention k,v on the text tokens
             + 3·2N(Da + 3aD)        the three AdaLN-LoRA modulations (per token: the timestep is per frame)
    attention  4N²D + 4NSD           QKᵀ and PV of self- and cross-attention
    LoRA       2r(in + out) per row of each adapted Linear (the recipe's 6 names: 10 Linears per block)
Outside the blocks: patch embedding, final AdaLN and projection, and crossattn_proj (2S x 100352 x E).

Training step (frozen base + LoRA; recomputation is not counted, as MFU does not count it): the backward pass of
a frozen Linear computes only its input gradient (1x its forward), attention's backward is 2x its forward (dQ,
dK, dV, dP: four matmuls for two), an adapted LoRA pair is 3x (input gradient, A and B gradients); nothing before
the first block needs a backward pass. At 432x768x93 this is 911 TFLOP per step; the 889 TFLOP anchor of the
reference notes leaves out the AdaLN matmuls (22 TFLOP).
"""

from __future__ import annotations

import torch

TEXT_TOKENS = 512
# Dense bf16 tensor-core peaks (vendor datasheets), matched against torch.cuda.get_device_name.
PEAK_BF16 = [
    ("H100 PCIe", 756e12),
    ("H100 NVL", 835e12),
    ("H200 NVL", 835e12),
    ("H100", 989e12),
    ("H200", 989e12),
    ("A100", 312e12),
    ("L40S", 362e12),
    ("RTX 4090", 165e12),
]


def dit_flops(
    config,
    frames: int,
    height: int,
    width: int,
    rank: int,
    vae_scales: tuple[int, int],
    text_tokens: int = TEXT_TOKENS,
) -> dict:
    """{"forward", "train", "tokens"} for one sample; `config` is CosmosTransformer3DModel's config,
    `vae_scales` the VAE's (temporal, spatial) compression (trainer.cosmos.vae_scale_factors)."""
    pt, ph, pw = config["patch_size"]
    temporal, spatial = vae_scales
    t = (frames - 1) // temporal + 1
    n = (t // pt) * (height // spatial // ph) * (width // spatial // pw)
    d = config["num_attention_heads"] * config["attention_head_dim"]
    m, a, s = int(config["mlp_ratio"] * d), config["adaln_lora_dim"], text_tokens
    e = config["encoder_hidden_states_channels"] if config["use_crossattn_projection"] else config["text_embed_dim"]
    linear = 2 * n * (6 * d * d + 2 * d * m) + 2 * s * 2 * e * d + 3 * 2 * n * (d * a + 3 * a * d)
    attention = 4 * n * n * d + 4 * n * s * d
    lora = 2 * rank * (n * 6 * 2 * d + s * 2 * (e + d) + n * 2 * (d + m))
    layers = config["num_layers"]
    patch = pt * ph * pw
    outer = (
        2 * n * (config["in_channels"] + 1) * patch * d
        + 2 * n * (d * a + 2 * a * d)
        + 2 * n * d * patch * config["out_channels"]
    )
    proj = 2 * s * config["crossattn_proj_in_channels"] * e if config["use_crossattn_projection"] else 0
    forward = layers * (linear + attention + lora) + outer + proj
    backward = layers * (linear + 2 * attention + 2 * lora) + outer
    return {"forward": float(forward), "train": float(forward + backward), "tokens": n}


def peak_flops(device: torch.device, override_tflops: float | None = None) -> float | None:
    """The device's dense bf16 peak in FLOP/s, or None when unknown (then MFU is not reported)."""
    if override_tflops:
        return override_tflops * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16 if key in name), None)
