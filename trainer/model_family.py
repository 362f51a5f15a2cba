"""The model-family seam: what a backend provides, so that training, the latent cache, generation and evaluation
can run a model without knowing which one it is.

One family today, Cosmos Predict 2.5 (`trainer.cosmos`); `family(model)` says which backend serves a config's
`model`. A second family (Cosmos 3, whose pipeline diffusers ships) is a second module providing the same names,
chosen in `family`; the seam grows only by what that second model needs. What a backend provides:

    load     load_pipeline(model, revision, dtype, guardrail, encoders) -> pipeline; model_identity(...)
             (which weights, for the card); PIPELINE_CLASS (the diffusers pipeline, also how a pipeline samples)
    encode   encode_video(pipe, video) -> normalised latents; encode_prompts(pipe, prompts) -> embeddings;
             latent_normalisers, vae_scale_factors (the VAE's compression, from its config)
    loss     draw_flow_batch(...) -> noise, timesteps and dropout of one step; flow_matching_loss(...) -> loss
    sample   the pipeline's own call (PIPELINE_CLASS.__call__), from a first frame or a first clip
    adapter  ADAPTER_TARGETS: the transformer's Linear layers the recipe puts adapters on (`target_modules`)
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Protocol, runtime_checkable

SEAM = {
    "load": ("load_pipeline", "model_identity", "PIPELINE_CLASS"),
    "encode": ("encode_video", "encode_prompts", "latent_normalisers", "vae_scale_factors"),
    "loss": ("draw_flow_batch", "flow_matching_loss"),
    "sample": ("PIPELINE_CLASS",),
    "adapter": ("ADAPTER_TARGETS",),
}


@runtime_checkable
class ModelFamily(Protocol):
    """A backend module: every name of SEAM (a module satisfies this protocol by having them)."""

    PIPELINE_CLASS: type
    ADAPTER_TARGETS: tuple[str, ...]

    def load_pipeline(self, model: str, revision: str | None = None, **kwargs: Any) -> Any: ...
    def model_identity(self, model: str, revision: str | None, path: Any = None) -> dict: ...
    def encode_video(self, pipe: Any, video: Any) -> Any: ...
    def encode_prompts(self, pipe: Any, prompts: list[str], device: Any = None) -> Any: ...
    def latent_normalisers(self, pipe: Any, device: Any, dtype: Any) -> tuple[Any, Any]: ...
    def vae_scale_factors(self, vae: Any) -> tuple[int, int]: ...
    def draw_flow_batch(self, *args: Any, **kwargs: Any) -> Any: ...
    def flow_matching_loss(self, *args: Any, **kwargs: Any) -> Any: ...


def family(model: str) -> ModuleType:
    """The backend serving `model` (a config's `model`: "tiny", a folder or a Hub id). Cosmos Predict 2.5 only."""
    from trainer import cosmos

    return cosmos


def missing(backend: ModuleType) -> list[str]:
    """The SEAM names `backend` does not provide (empty: it is a model family)."""
    return sorted({name for names in SEAM.values() for name in names if not hasattr(backend, name)})
