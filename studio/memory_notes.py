"""The memory estimates the Train form and the Generate tab show (trainer.spec.memory), as Markdown; Gradio-free
and torch-free."""

from __future__ import annotations

from typing import Any

from trainer.spec import memory
from trainer.spec.config import TrainConfig
from trainer.spec.generate_settings import GenerateSettings

# The Generate tab's inputs the generation estimate depends on, in this order.
ESTIMATED = ("model", "height", "width", "num_frames", "precision", "memory")
_TEXT = ("model", "precision", "memory")


def training_markdown(config: TrainConfig | None) -> str:
    """The form's estimate: peak by part, the verdict for this machine's GPU (else for each common card size) and
    the cheapest change that fits. Empty while the form has problems."""
    if config is None:
        return ""
    lines = memory.training_report(config)
    return "**Memory estimate** (before launch; docs/memory.md)\n```\n" + "\n".join(lines) + "\n```"


def generation_markdown(*values: Any) -> str:
    """The Generate tab's estimate for the values of ESTIMATED, in the mode `memory` resolves to here. Empty while
    the settings have problems (the tab says which)."""
    try:
        settings = GenerateSettings(**{k: v if k in _TEXT else int(v) for k, v in zip(ESTIMATED, values)})
    except (TypeError, ValueError):
        return ""
    if settings.problems():
        return ""
    gpu = memory.visible_gpu_gib()
    mode = memory.pick_generation_mode(settings, gpu) if settings.memory == "auto" else settings.memory
    lines = memory.generation_report(settings, mode, gpu)
    return f"**Memory** ({settings.memory}: {mode})\n```\n" + "\n".join(lines) + "\n```"
