"""Runs the diffusers Cosmos transformer where torchvision cannot be imported.

`CosmosTransformer3DModel.forward` resizes its padding mask with torchvision. CPU-only machines may have no
working torchvision (the registry can serve only a CUDA build that fails to import against a CPU torch).
Nearest-neighbour resizing with torch gives bit-identical output (measured), so when torchvision is missing we
give the module a minimal stand-in for the one call it makes. With torchvision present nothing changes.
"""

from __future__ import annotations

import types


def _resize(tensor, size, interpolation=None, **_):
    import torch.nn.functional as F

    return F.interpolate(tensor, size=list(size), mode="nearest")


def install() -> None:
    from diffusers.models.transformers import transformer_cosmos

    if hasattr(transformer_cosmos, "transforms"):
        return
    functional = types.SimpleNamespace(resize=_resize)
    modes = types.SimpleNamespace(NEAREST="nearest")
    transformer_cosmos.transforms = types.SimpleNamespace(functional=functional, InterpolationMode=modes)
