"""Learning-rate schedules: a factor of `learning_rate` per optimizer step, over the run's real length.

All three warm up linearly to f_max over `warmup_steps` (clipped to the run). After that:
    linear    the recipe's: straight down from f_max to f_min at the run's last step (the default)
    constant  f_max until the end
    cosine    half a cosine from f_max to f_min at the last step
The recipe computes its decay over a fixed 100000 steps whatever the run's length; here the decay ends at the
run's own last step. Scheduler index s is step - 1 (torch's LambdaLR calls it with 0 for the first step).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

LrScheduler = Literal["linear", "constant", "cosine"]


def lr_factor(
    schedule: LrScheduler, warmup_steps: int, f_max: float, f_min: float, total: int
) -> Callable[[int], float]:
    warmup = min(warmup_steps, max(total - 1, 0))
    decay_steps = max(total - 1 - warmup, 1)

    def factor(s: int) -> float:
        if s < warmup:
            return f_max * (s + 1) / warmup
        progress = min((s - warmup) / decay_steps, 1.0)
        if schedule == "constant":
            return f_max
        if schedule == "cosine":
            return f_min + (f_max - f_min) * 0.5 * (1 + math.cos(math.pi * progress))
        return f_max + (f_min - f_max) * progress

    return factor
