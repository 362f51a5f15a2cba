"""The benchmark's modes: what each one changes (cache, checkpointing, attention, compile, optimizer, adapter) and
the training config it means. bench/bench.py and bench/gpu_bench.py run them."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from trainer.spec.config import TrainConfig


@dataclass(frozen=True)
class Mode:
    name: str
    cache: bool
    checkpointing: str  # off | every_block | selective
    attention: str  # a config attention_backend value
    compile: bool
    fused_adamw: bool
    empty_cache: bool  # torch.cuda.empty_cache() after every step, as the recipe does
    adapter: str = "lora"  # a config adapter value

    def describe(self, device: torch.device, attention: str) -> str:
        """What this mode does on `device` (fused AdamW and empty_cache exist on CUDA only)."""
        cuda = device.type == "cuda"
        parts = [
            "DoRA" if self.adapter == "dora" else "",
            "latents + prompts from the cache" if self.cache else "VAE + text encoder run every step",
            f"checkpointing {self.checkpointing}",
            f"attention {attention}",
            "compiled blocks" if self.compile else "",
            "fused AdamW" if self.fused_adamw and cuda else "",
            "empty_cache every step" if self.empty_cache and cuda else "",
        ]
        return ", ".join(p for p in parts if p)


REFERENCE = Mode(
    "reference",
    cache=False,
    checkpointing="every_block",
    attention="native",
    compile=False,
    fused_adamw=False,
    empty_cache=True,
)
STUDIO = Mode(
    "studio", cache=True, checkpointing="selective", attention="auto", compile=True, fused_adamw=True, empty_cache=False
)
MODES = {
    m.name: m
    for m in (
        REFERENCE,
        STUDIO,
        replace(STUDIO, name="studio-uncached", cache=False),
        replace(STUDIO, name="studio-every-block", checkpointing="every_block"),
        replace(STUDIO, name="studio-no-compile", compile=False),
        replace(STUDIO, name="studio-dora", compile=False, adapter="dora"),  # against studio-no-compile
    )
}


def train_config(args, mode: Mode) -> TrainConfig:
    return TrainConfig(
        data="bench",
        height=args.height,
        width=args.width,
        num_frames=args.frames,
        rank=args.rank,
        alpha=float(args.rank),
        adapter=mode.adapter,
        mixed_precision="bf16" if args.bf16 else "no",
        gradient_checkpointing=mode.checkpointing != "off",
        checkpointing_policy=mode.checkpointing if mode.checkpointing != "off" else "every_block",
        attention_backend=mode.attention,
        compile=mode.compile,
        fused_adamw=mode.fused_adamw,
        cache="auto" if mode.cache else "off",
        cache_windows=1,
    )
