"""The dtype generation and evaluation run in, and the peak-memory line the logs end with.

`auto` is bf16 where the device computes it natively (CUDA GPUs with bf16; CPUs with AVX512-BF16 or AMX, or
Arm's BF16 extension) and fp32 elsewhere; `bf16` and `fp32` are taken as asked. bf16 halves the memory of
every weight: measured on the real architecture in bench/RESULTS.md.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path

import torch

from trainer.spec.generate_settings import PRECISIONS

CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")  # x86 (AVX512-BF16, AMX) and aarch64 ("bf16" in Features)


def cpu_flags() -> set[str]:
    """The feature flags /proc/cpuinfo lists (empty where there is no such file)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return flags


def native_bf16(device: torch.device, flags: set[str] | None = None) -> bool:
    """Whether `device` computes bf16 matmuls natively (not emulated through fp32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        return bool(set(CPU_BF16_FLAGS) & (cpu_flags() if flags is None else flags))
    return False


def resolve(precision: str, device: torch.device, flags: set[str] | None = None) -> torch.dtype:
    """The dtype for a `precision` setting on `device`; ValueError names the field for an unknown value."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision: must be one of {', '.join(PRECISIONS)} (got {precision!r})")
    if precision == "fp32" or (precision == "auto" and not native_bf16(device, flags)):
        return torch.float32
    return torch.bfloat16


def peak_memory_line(device: torch.device | None = None) -> str:
    """'peak memory: RSS 5.02 GiB[, CUDA allocated 3.10 GiB]' for this process so far."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    rss_gib = rss / 2**30 if sys.platform == "darwin" else rss / 2**20
    line = f"peak memory: RSS {rss_gib:.2f} GiB"
    if device is not None and device.type == "cuda":
        line += f", CUDA allocated {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB"
    return line
