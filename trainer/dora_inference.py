"""DoRA at inference: each layer's weight norm computed once per (adapter, strength), not on every forward.

peft's `DoraLinearLayer.forward` recomputes ||W + s·B·A|| (column-wise, over the full weight, with B·A built by
pushing an identity matrix the size of the layer's input through the adapter) on every call: on the real
architecture that made DoRA generation several times slower than LoRA (bench/RESULTS.md). While nothing trains,
the norm is a constant of (adapter, strength, dtype). Inside `frozen_dora_norms` each DoRA layer runs peft's
arithmetic unchanged except that the norm is memoised, so the output is the one peft computes.

peft's own switch (`peft.tuners.lora.dora.ENABLE_DORA_CACHING`) is not used: it keys the norm by adapter name
only (a new strength would reuse a stale norm) and also keeps every layer's full B·A, as much memory as the
targeted weights.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import MethodType

import torch
import torch.nn.functional as F
from peft.tuners.lora.dora import DoraLinearLayer
from peft.utils.integrations import dequantize_module_weight
from peft.utils.other import transpose


@contextlib.contextmanager
def frozen_dora_norms(model: torch.nn.Module) -> Iterator[int]:
    """Within the block, every DoRA Linear of `model` computes its weight norm once per (adapter, strength,
    dtype); the weights must not change inside it (no training, no adapter loading). Yields the layer count."""
    layers = [m for m in model.modules() if type(m) is DoraLinearLayer]
    for layer in layers:
        layer.forward = MethodType(_forward_with_memo(), layer)
    try:
        yield len(layers)
    finally:
        for layer in layers:
            del layer.forward  # back to the class's forward


def _forward_with_memo():
    norms: dict[tuple, torch.Tensor] = {}

    def forward(self, x, *, lora_A, lora_B, scaling, base_layer, base_result=None, adapter_name="default"):
        # peft 0.21's DoraLinearLayer.forward, with the weight norm looked up instead of recomputed.
        weight = dequantize_module_weight(base_layer).to(x.dtype)
        key = (adapter_name, float(scaling), x.dtype, x.device)
        weight_norm = norms.get(key)
        if weight_norm is None:
            lora_weight = self.get_lora_weight(lora_A=lora_A, lora_B=lora_B, adapter_name=adapter_name).to(x.dtype)
            weight_norm = self.get_weight_norm(
                weight=weight, lora_weight=lora_weight.detach(), scaling=scaling, adapter_name=adapter_name
            ).detach()
            norms[key] = weight_norm
        mag_norm_scale = (self.weight / weight_norm).view(1, -1)
        lora_result = lora_B(lora_A(x))
        if base_result is not None:
            if base_layer.bias is not None:
                base_result = base_result - base_layer.bias
        else:
            base_result = F.linear(x, transpose(weight, self.fan_in_fan_out))
        return (mag_norm_scale - 1) * base_result + mag_norm_scale * lora_result * scaling

    return forward
