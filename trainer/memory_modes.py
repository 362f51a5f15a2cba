"""Generation that fits the GPU: `memory: auto | full | offload` applied with diffusers' own offload and tiling.

- full: the transformer, VAE and text encoder stay on the device.
- offload: `pipe.enable_model_cpu_offload` (accelerate hooks move each component to the device when it runs and
  back when the next one does: the text encoder runs then leaves, the transformer stays through the denoising
  loop, then the VAE), and the VAE decodes in tiles and slices (`vae.enable_tiling()`, `vae.enable_slicing()`).
- auto: full where trainer.spec.memory's estimate of the generation fits the GPU (always on a CPU), else offload.

The modes compute the same video (tests/test_memory_modes.py); only where the weights wait differs.
"""

from __future__ import annotations

import logging

import torch

from trainer.spec import memory

log = logging.getLogger(__name__)


def device_gib(device: torch.device) -> float | None:
    """Total memory of a CUDA device in GiB; None for a CPU (host memory is not the constraint modelled)."""
    if device.type != "cuda":
        return None
    return torch.cuda.get_device_properties(device).total_memory / memory.GIB


def resolve(settings, device: torch.device) -> str:
    """The mode `settings.memory` means for these settings on `device`."""
    if settings.memory != "auto":
        return settings.memory
    return memory.pick_generation_mode(settings, device_gib(device))


def apply(pipe, mode: str, device: torch.device) -> None:
    """Places the pipeline's components for `mode` (full or offload), undoing the other mode first."""
    if mode == "offload":
        pipe.vae.enable_tiling()
        pipe.vae.enable_slicing()
        pipe.enable_model_cpu_offload(device=device)
    else:
        if getattr(pipe, "_all_hooks", None):
            pipe.remove_all_hooks()
        pipe.vae.disable_tiling()
        pipe.vae.disable_slicing()
        pipe.to(device)
    log.info("generation memory mode: %s", mode)
