"""Learning-rate schedules: warm-up, then linear (the recipe's), constant or cosine to the run's last step."""

from __future__ import annotations

import math

import pytest
import torch

from trainer.spec.config import TrainConfig, config_from_dict
from trainer.spec.schedules import lr_factor

TOTAL, WARMUP, F_MAX, F_MIN = 12, 3, 0.5, 0.2  # 8 decay steps: the cosine has a middle step


def _factors(schedule: str) -> list[float]:
    factor = lr_factor(schedule, WARMUP, F_MAX, F_MIN, TOTAL)
    return [factor(s) for s in range(TOTAL)]


@pytest.mark.parametrize("schedule", ["linear", "constant", "cosine"])
def test_every_schedule_warms_up_linearly_to_f_max(schedule):
    assert _factors(schedule)[: WARMUP + 1] == pytest.approx([F_MAX / 3, 2 * F_MAX / 3, F_MAX, F_MAX])


def test_linear_decays_straight_to_f_min_at_the_last_step():
    after = _factors("linear")[WARMUP:]
    assert after[-1] == pytest.approx(F_MIN)
    steps = [b - a for a, b in zip(after, after[1:])]
    assert steps == pytest.approx([(F_MIN - F_MAX) / (TOTAL - 1 - WARMUP)] * len(steps))


def test_constant_stays_at_f_max():
    assert _factors("constant")[WARMUP:] == pytest.approx([F_MAX] * (TOTAL - WARMUP))


def test_cosine_follows_half_a_cosine_to_f_min():
    after = _factors("cosine")[WARMUP:]
    n = TOTAL - 1 - WARMUP
    expected = [F_MIN + (F_MAX - F_MIN) * 0.5 * (1 + math.cos(math.pi * i / n)) for i in range(n + 1)]
    assert after == pytest.approx(expected)
    assert after[n // 2] == pytest.approx((F_MAX + F_MIN) / 2)  # the midpoint of a cosine


def test_the_schedule_drives_torch_lambda_lr_step_by_step():
    """As train.py uses it: the lr the optimizer sees at each step is learning_rate x factor(step - 1)."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor("cosine", WARMUP, F_MAX, F_MIN, TOTAL))
    seen = []
    for _ in range(TOTAL):
        seen.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert seen == pytest.approx([1e-3 * f for f in _factors("cosine")])


def test_the_config_names_the_choices_and_keeps_the_recipe_default():
    assert TrainConfig(data="sample").lr_scheduler == "linear"
    with pytest.raises(ValueError, match="lr_scheduler: must be one of 'linear', 'constant', 'cosine'"):
        config_from_dict({"data": "sample", "lr_scheduler": "step"})
