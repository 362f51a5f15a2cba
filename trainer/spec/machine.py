"""A training config judged against the machine it would run on: the one place a value is judged.

`config_problems_on(config, machine)` is called by the studio's Start (and a queued run's turn, through
studio.jobs) and by the trainer before it loads anything (trainer.train, which `python -m trainer train` runs),
so a config is judged once and the same way wherever it comes from. It holds, in order:

  1. the config's own rules and bounds (`TrainConfig.validate`): every problem of the config, by field;
  2. the clip's token budget on this machine's device (a GPU's, or a CPU's where no GPU is visible);
  3. the memory verdict, `memory_problem`: trainer.spec.memory's estimate of the run's peak against the GPU's
     memory, where it is known.

Torch-free: the studio judges a config without importing torch; it learns about the device from `Machine`.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from trainer.spec import memory
from trainer.spec.bounds import size_problem
from trainer.spec.config import Problem, TrainConfig


def cuda_visible() -> bool:
    """Whether a child process will see a GPU, decided without importing torch."""
    devices = os.environ.get("CUDA_VISIBLE_DEVICES")
    if devices is not None:
        return devices.strip() not in ("", "-1")
    return shutil.which("nvidia-smi") is not None


@dataclass(frozen=True)
class Machine:
    """What a config is judged against. `gpu`: a GPU is visible to the trainer; `memory_gib`: its memory when
    known (None: not known, so not judged)."""

    gpu: bool
    memory_gib: float | None = None

    @classmethod
    def visible(cls) -> Machine:
        """The machine a child process of this one will train on (torch-free: the studio asks this)."""
        gpu = cuda_visible()
        return cls(gpu=gpu, memory_gib=memory.visible_gpu_gib() if gpu else None)


def memory_problem(config: TrainConfig, machine: Machine) -> Problem | None:
    """Why the run would not fit the GPU's memory, or None (also where the memory or the model's profile is not
    known). Refused only when the estimate exceeds what PyTorch can allocate even without its margin: the
    estimate has not yet been checked on a GPU (docs/memory.md), and a wrong refusal would stop a run that fits."""
    if machine.memory_gib is None:
        return None
    estimate = memory.training_estimate(config)
    if estimate is None or estimate.total / (1 + memory.MARGIN) <= memory.usable_gib(machine.memory_gib) * memory.GIB:
        return None
    fix = memory.cheapest_fix(config, machine.memory_gib)
    field = fix.removeprefix("set ").split()[0].rstrip(",") if fix else "num_frames"
    remedy = fix or "lower num_frames, height and width, or rank"
    return Problem(
        field,
        f"the run needs about {estimate.total_gib:.1f} GiB of GPU memory and this {machine.memory_gib:.0f} GiB GPU "
        f"leaves {memory.usable_gib(machine.memory_gib):.1f} GiB; {remedy} (docs/memory.md)",
    )


def config_problems_on(config: TrainConfig, machine: Machine) -> list[Problem]:
    """Every reason `config` cannot train on `machine`, by field; empty when it can."""
    problems = config.validate()
    if problems:
        return problems
    size = size_problem(config.height, config.width, config.num_frames, gpu=machine.gpu)
    if size:
        return [Problem("height", size)]
    memory = memory_problem(config, machine)
    return [memory] if memory else []
