"""How the training step runs fast: attention kernel, activation checkpointing, regional compilation, optimizer.

Every setting is a config field with a safe default, and each computes the same loss as the plain path
(tests/test_speed.py). Measured on GPUs in bench/RESULTS.md.

- attention_backend: diffusers' attention dispatcher. `auto` asks for cuDNN attention on Hopper and newer, torch's
  flash kernel on Ampere, plain SDPA elsewhere, and falls back to plain SDPA when a probe of the kernel fails.
- checkpointing_policy (with gradient_checkpointing): `every_block` recomputes each transformer block in the
  backward pass (the recipe); `selective` also recomputes each block but keeps its self-attention output, the
  op with ~2/3 of the block's FLOPs, so the backward pass recomputes only the cheap matmuls around it.
- compile: `torch.compile` of each transformer block (regional: one compiled graph reused by all 28 blocks).
  The checkpoint goes inside the compiled region, as torch.compile supports (selective policies included).
- fused_adamw: torch's fused AdamW kernel on CUDA.
"""

from __future__ import annotations

import functools
import logging

import torch
from torch.utils.checkpoint import CheckpointPolicy, checkpoint, create_selective_checkpoint_contexts

from trainer.spec.config import TrainConfig

log = logging.getLogger("trainer")

# config value -> diffusers AttentionBackendName value
BACKENDS = {"native": "native", "cudnn": "_native_cudnn", "flash": "flash", "torch_flash": "_native_flash"}
FUSED_ADAMW_DEVICES = ("cuda",)
COMPILE_OPTIONS: dict = {}  # passed to torch.compile for each block (tests use a lighter backend on CPU)

_aten = torch.ops.aten
_SDPA_OPS = tuple(
    op
    for op in (
        getattr(_aten, "_scaled_dot_product_flash_attention", None),
        getattr(_aten, "_scaled_dot_product_efficient_attention", None),
        getattr(_aten, "_scaled_dot_product_cudnn_attention", None),
        getattr(_aten, "_scaled_dot_product_flash_attention_for_cpu", None),
        getattr(getattr(torch.ops, "flash_attn", None), "_flash_attn_forward", None),
    )
    if op is not None
)


class SpeedError(ValueError):
    """A speed setting this machine cannot honour, naming the field and the fix."""


def apply(transformer, cfg: TrainConfig, device: torch.device) -> dict[str, str]:
    """Applies the step settings to the transformer (after the adapter is attached); returns what was chosen."""
    policy = cfg.checkpointing_policy if cfg.gradient_checkpointing else "off"
    backend = attention_backend(cfg.attention_backend, device, cfg.mixed_precision)
    set_attention_backend(transformer, backend)
    for block in transformer.transformer_blocks:
        if policy != "off":
            checkpoint_block(block, policy)
        if cfg.compile:
            block.compile(**COMPILE_OPTIONS)
    chosen = {"attention": backend, "checkpointing": policy, "compile": str(cfg.compile)}
    log.info("step: attention %s, checkpointing %s, compile %s", backend, policy, cfg.compile)
    return chosen


# --------------------------------------------------------------------------------------------- attention
def attention_backend(choice: str, device: torch.device, mixed_precision: str) -> str:
    """The diffusers backend name for a config choice on this device."""
    half = mixed_precision in ("bf16", "fp16")
    if choice == "native":
        return BACKENDS["native"]
    if device.type != "cuda":
        if choice == "auto":
            return BACKENDS["native"]
        raise SpeedError(f"attention_backend: {choice!r} needs a CUDA GPU; use auto or native on this machine.")
    if choice in ("cudnn", "flash") and not half:
        raise SpeedError(f"attention_backend: {choice!r} needs mixed_precision bf16 or fp16; use auto or native.")
    if choice == "cudnn":
        return BACKENDS["cudnn"]
    if choice == "flash":
        from diffusers.models import attention_dispatch

        return BACKENDS["flash"] if attention_dispatch._CAN_USE_FLASH_ATTN else BACKENDS["torch_flash"]
    if not half:
        return BACKENDS["native"]
    major, _ = torch.cuda.get_device_capability(device)
    wanted = [BACKENDS["cudnn"], BACKENDS["torch_flash"]] if major >= 9 else [BACKENDS["torch_flash"]]
    dtype = torch.bfloat16 if mixed_precision == "bf16" else torch.float16
    for name in wanted:
        if _probe(name, device, dtype):
            return name
    return BACKENDS["native"]


def _probe(name: str, device: torch.device, dtype: torch.dtype) -> bool:
    """Whether a kernel runs forward and backward at the transformer's head size on this GPU."""
    from diffusers.models.attention_dispatch import attention_backend as use
    from diffusers.models.attention_dispatch import dispatch_attention_fn

    q = torch.randn(1, 256, 2, 128, device=device, dtype=dtype, requires_grad=True)
    try:
        with use(name):
            dispatch_attention_fn(q, q, q).sum().backward()
        return True
    except (RuntimeError, ValueError) as exc:
        log.info("attention backend %s is unavailable here (%s)", name, str(exc).splitlines()[0])
        return False


def set_attention_backend(transformer, backend: str) -> None:
    from diffusers.utils import logging as diffusers_logging

    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()  # it warns that backends are "experimental" on every call
    try:
        transformer.set_attention_backend(backend)
    finally:
        diffusers_logging.set_verbosity(verbosity)


# --------------------------------------------------------------------------------------------- checkpointing
def _keep_self_attention(ctx, op, *args, **kwargs) -> CheckpointPolicy:
    """Save the output of self-attention (query and key shaped alike), recompute everything else."""
    if getattr(op, "overloadpacket", op) in _SDPA_OPS and args[0].shape == args[1].shape:
        return CheckpointPolicy.MUST_SAVE
    return CheckpointPolicy.PREFER_RECOMPUTE


def _selective_context():
    return create_selective_checkpoint_contexts(_keep_self_attention)


def checkpoint_block(block: torch.nn.Module, policy: str) -> None:
    """Runs the block's forward under activation checkpointing when gradients are on. Done on the instance's
    forward (not through diffusers' block loop) so that a compiled block contains its own checkpoint."""
    inner = block.forward
    context = _selective_context if policy == "selective" else None

    @functools.wraps(inner)
    def forward(*args, **kwargs):
        if not torch.is_grad_enabled():
            return inner(*args, **kwargs)
        extra = {"context_fn": context} if context is not None else {}
        return checkpoint(inner, *args, use_reentrant=False, **extra, **kwargs)

    block.forward = forward


# --------------------------------------------------------------------------------------------- optimizer
def make_optimizer(params, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    fused = cfg.fused_adamw and device.type in FUSED_ADAMW_DEVICES
    return torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay, fused=fused)
