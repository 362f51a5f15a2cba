"""Number inputs whose refusal names their field: an API caller sending `seed=10**30` reads "seed: must be between
0 and 4294967295 (got 1e+30)." instead of gr.Number's "Value 1e+30 is greater than maximum value 4294967295."
(which names no field) or, with no bound at all, an overflow deep in the child process.

A function, not a gr.Number subclass: Gradio writes a .pyi stub next to the module of every component class.
"""

from __future__ import annotations

import math
from functools import partial

import gradio as gr


def named_number(*args, **kwargs) -> gr.Number:
    """gr.Number(*args, **kwargs) whose server-side bound check (run before any handler) names its label."""
    number = gr.Number(*args, **kwargs)
    number.raise_if_out_of_bounds = partial(_refuse_out_of_bounds, number.label)  # shadows gr.Number's staticmethod
    return number


def _refuse_out_of_bounds(label: str, value: float, low: float | None, high: float | None) -> None:
    if math.isfinite(value) and (low is None or value >= low) and (high is None or value <= high):
        return
    raise gr.Error(f"{label}: must be {_range(low, high)} (got {value:g}).", print_exception=False)


def _range(low: float | None, high: float | None) -> str:
    if low is None and high is None:
        return "a finite number"
    if high is None:
        return f"at least {_number(low)}"
    if low is None:
        return f"at most {_number(high)}"
    return f"between {_number(low)} and {_number(high)}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"
