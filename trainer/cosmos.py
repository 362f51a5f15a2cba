"""The Cosmos Predict 2.5 model family (trainer.model_family names the seam): everything that knows it is Cosmos
Predict 2.5 lives here.

Loading the pipeline (tiny, local folder or Hub), encoding videos to normalised latents, encoding prompts to
embeddings, the rectified-flow objective, and the guardrail choice. The trainer, `generate` and `evaluate`
only call these functions, so a second model would only need a second module like this one.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from trainer import compat
from trainer.spec.config import RECIPE_TARGET_MODULES, TINY_MODEL, resolve_revision
from trainer.spec.embedded import tiny_model_dir

compat.install()
from diffusers import Cosmos2_5_PredictBasePipeline  # noqa: E402  (after the compat shim)

PIPELINE_CLASS = Cosmos2_5_PredictBasePipeline
ADAPTER_TARGETS = RECIPE_TARGET_MODULES  # the recipe's LoRA targets: attention and feed-forward Linears
TIMESTEP_SHIFT = 5.0  # sigma = shift*t / (1 + (shift-1)*t), the recipe's shift for 432x768 training
log = logging.getLogger(__name__)


class _QuietAboutStandIn(logging.Filter):
    """diffusers warns that NoGuardrail is not its CosmosSafetyChecker class; accepting one is documented."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Expected types for safety_checker" not in record.getMessage()


logging.getLogger("diffusers.pipelines.pipeline_loading_utils").addFilter(_QuietAboutStandIn())
logging.getLogger("diffusers.pipelines.pipeline_utils").addFilter(_QuietAboutStandIn())


class ModelError(RuntimeError):
    """A model that cannot be loaded, with one sentence saying why and how to fix it."""


class NoGuardrail:
    """Stands in for NVIDIA's guardrail when the user has chosen to run without it (`guardrail: false`)."""

    def to(self, *args, **kwargs):
        return self

    def check_text_safety(self, prompt: str) -> bool:
        return True


# --------------------------------------------------------------------------------------------- loading
def is_hub_model(model: str) -> bool:
    """A Hub model id (as opposed to "tiny" or an existing local folder)."""
    return model != TINY_MODEL and not Path(model).expanduser().exists()


def resolve_model(model: str, revision: str | None) -> Path:
    """A local folder holding the pipeline: tiny, a folder as given, or a Hub snapshot (downloaded with progress)
    at `resolve_revision(model, revision)`."""
    if model == TINY_MODEL:
        return tiny_model_dir()
    local = Path(model).expanduser()
    if local.exists():
        if not (local / "model_index.json").exists():
            raise ModelError(f"{local} has no model_index.json; point model at a diffusers pipeline folder.")
        return local
    return download_snapshot(model, resolve_revision(model, revision))


def download_snapshot(repo_id: str, revision: str | None, allow_patterns: list[str] | None = None) -> Path:
    """The Hub snapshot of `repo_id` at `revision` (only the files matching allow_patterns when given), downloaded
    with progress when not cached; ModelError names what went wrong and the fix."""
    from huggingface_hub import errors as hub
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=allow_patterns))
    except hub.HFValidationError:
        raise ModelError(f"model {repo_id!r} is neither a local folder nor a Hub model id (owner/name).") from None
    except hub.GatedRepoError:
        raise ModelError(
            f"{repo_id} is gated: accept its license on its Hub page with your account, then set HF_TOKEN "
            "(or run `hf auth login`) on this machine."
        ) from None
    except hub.RepositoryNotFoundError:
        token = "" if os.environ.get("HF_TOKEN") else " If it is private or gated, set HF_TOKEN first."
        raise ModelError(
            f"model {repo_id!r} is neither a local folder nor a Hub model id you can reach.{token}"
        ) from None
    except hub.RevisionNotFoundError:
        raise ModelError(f"{repo_id} has no revision {revision!r}; check the revision field.") from None
    except hub.LocalEntryNotFoundError:
        raise ModelError(
            f"{repo_id} is not in the local Hugging Face cache and the Hub cannot be reached (offline?); connect to "
            "the network once, or set model to a local folder."
        ) from None
    except hub.HfHubHTTPError as exc:
        raise ModelError(f"downloading {repo_id} failed: {exc}. Check the network and HF_TOKEN.") from None


def make_guardrail(enabled: bool, model: str):
    """NVIDIA's guardrail, or the explicit no-guardrail stand-in when the user turned it off."""
    if not enabled:
        return NoGuardrail()
    try:
        from cosmos_guardrail import CosmosSafetyChecker
    except ImportError:
        if model == TINY_MODEL:  # our own toy weights are not NVIDIA's model; the guardrail has nothing to guard
            log.info("cosmos_guardrail is not installed; the embedded tiny model runs without it.")
            return NoGuardrail()
        raise ModelError(
            "guardrail is on but the cosmos_guardrail package is not installed: `pip install cosmos_guardrail`, "
            "or set guardrail to false (your decision under NVIDIA's Open Model License)."
        ) from None
    return CosmosSafetyChecker()


def load_pipeline(
    model: str,
    revision: str | None = None,
    dtype: torch.dtype = torch.float32,
    guardrail: bool = False,
    encoders: bool = True,
) -> Cosmos2_5_PredictBasePipeline:
    """The pipeline in `dtype`. With `encoders=False` the VAE and text encoder are weightless placeholders (their
    config and dtype, no memory: the real text encoder is 16.6 GB in bf16) until `load_encoders` is called;
    a training run from a complete latent cache never needs them. `pipe.config._name_or_path` is the folder it
    came from (for `model_identity`)."""
    path = resolve_model(model, revision)
    stand_ins = {} if encoders else {name: _placeholder(path, name, dtype) for name in ENCODERS}
    try:
        pipe = PIPELINE_CLASS.from_pretrained(
            path, dtype=dtype, safety_checker=make_guardrail(guardrail, model), **stand_ins
        )
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load a Cosmos Predict 2.5 pipeline from {path}: {exc}") from None
    pipe.set_progress_bar_config(disable=True)
    return pipe


ENCODERS = ("vae", "text_encoder")


def encoders_loaded(pipe) -> bool:
    return all(getattr(pipe, name).device.type != "meta" for name in ENCODERS)


def load_encoders(pipe, names: tuple[str, ...] = ENCODERS, reason: str = "the latent cache misses entries") -> None:
    """Loads the real VAE and text encoder (or those of `names`) in place of `load_pipeline(..., encoders=False)`'s
    placeholders."""
    path = Path(pipe.name_or_path)
    for name in names:
        stand_in = getattr(pipe, name)
        if stand_in.device.type == "meta":
            log.info("loading the %s (%s)", name, reason)
            real = type(stand_in).from_pretrained(path, subfolder=name, dtype=stand_in.dtype)
            pipe.register_modules(**{name: real.eval().requires_grad_(False)})


def unload_encoders(pipe) -> None:
    """Puts the placeholders back, freeing the encoders' memory (training from the cache never runs them)."""
    path = Path(pipe.name_or_path)
    for name in ENCODERS:
        module = getattr(pipe, name)
        if module.device.type != "meta":
            pipe.register_modules(**{name: _placeholder(path, name, module.dtype)})


def _placeholder(path: Path, name: str, dtype: torch.dtype):
    """The component `name` of the pipeline folder with its real class and config but weights on the meta device."""
    import importlib

    from accelerate import init_empty_weights

    try:
        library, class_name = json.loads((path / "model_index.json").read_text())[name]
        cls = getattr(importlib.import_module(library), class_name)
        with init_empty_weights():
            if library == "diffusers":
                module = cls.from_config(cls.load_config(path / name))
            else:
                module = cls._from_config(cls.config_class.from_pretrained(path / name), dtype=dtype)
    except (OSError, ValueError, KeyError, AttributeError) as exc:
        raise ModelError(f"cannot read the {name} config of the pipeline in {path}: {exc}") from None
    # nn.Module._apply, not .to(): diffusers' .to() warns about fp32 modules a weightless copy does not have
    return module._apply(lambda t: t.to(dtype) if t.is_floating_point() else t).eval().requires_grad_(False)


def save_pipeline(pipe, out_dir: Path) -> None:
    """save_pretrained in diffusers layout without the safety checker: the guardrail (or the stand-in) is a
    run-time choice, not a saved component, so loading the folder must not expect one on disk."""
    from diffusers.utils import logging as diffusers_logging

    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()  # it would warn that the stand-in checker is not saved: by design
    try:
        pipe.save_pretrained(out_dir, safe_serialization=True)
    finally:
        diffusers_logging.set_verbosity(verbosity)
    index_path = Path(out_dir) / "model_index.json"
    index = json.loads(index_path.read_text())
    index.pop("safety_checker", None)
    index_path.write_text(json.dumps(index, indent=2))


def model_identity(model: str, revision: str | None, path: str | Path | None = None) -> dict:
    """What an adapter card records about its base model: the id or folder, the revision asked for (resolved
    as everywhere else) and, for a Hub model, the commit it resolved to. `path` is the folder the pipeline was
    loaded from; a Hub snapshot folder is named after its commit (`.../snapshots/<sha>`), which keeps this
    offline-safe."""
    if model == TINY_MODEL:
        return {"base_model": TINY_MODEL, "revision": tiny_model_dir().name, "commit": None}
    if not is_hub_model(model):
        return {"base_model": model, "revision": "", "commit": None}
    return {
        "base_model": model,
        "revision": resolve_revision(model, revision) or "main",
        "commit": snapshot_commit(path) if path else None,
    }


def snapshot_commit(path: str | Path) -> str | None:
    """The commit hash of a Hugging Face cache snapshot folder (`.../snapshots/<40 hex>`), else None."""
    path = Path(path)
    name = path.name
    if path.parent.name == "snapshots" and len(name) == 40 and all(c in "0123456789abcdef" for c in name):
        return name
    return None


# --------------------------------------------------------------------------------------------- encoding
def frames_to_video_tensor(frames, height: int, width: int) -> torch.Tensor:
    """uint8 frames [F,H,W,3] (numpy or torch) -> float [3,F,height,width] in [-1, 1], resized like the recipe."""
    video = torch.as_tensor(np.asarray(frames).copy()).permute(0, 3, 1, 2).float() / 127.5 - 1.0  # [F,3,H,W]
    if video.shape[-2:] != (height, width):
        video = F.interpolate(video, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
    return video.permute(1, 0, 2, 3).contiguous()


def latent_normalisers(pipe, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    # The pipeline's latents_std already holds 1/sigma: normalised = (mean - latents_mean) * latents_std.
    return pipe.latents_mean.to(device, dtype), pipe.latents_std.to(device, dtype)


@torch.no_grad()
def encode_video(pipe, video: torch.Tensor) -> torch.Tensor:
    """Pixel video [B,3,F,H,W] in [-1,1] -> normalised clean latents [B,16,T,H/s,W/s] (VAE posterior mean; s the
    VAE's spatial compression, `vae_scale_factors`)."""
    vae = pipe.vae
    latents = vae.encode(video.to(vae.device, vae.dtype)).latent_dist.mean.float()
    mean, inv_std = latent_normalisers(pipe, latents.device, latents.dtype)
    return (latents - mean) * inv_std


@torch.no_grad()
def encode_prompts(pipe, prompts: list[str], device=None) -> torch.Tensor:
    """Prompts -> embeddings [B, 512, layers*hidden] exactly as the pipeline computes them (no CFG pair)."""
    device = device or pipe.text_encoder.device
    return pipe._get_prompt_embeds(prompt=prompts, device=device, dtype=pipe.text_encoder.dtype)


def vae_scale_factors(vae) -> tuple[int, int]:
    """(temporal, spatial) compression of a VAE, from its config: 4 and 8 for Cosmos Predict 2.5's Wan 2.1 VAE,
    4 and 4 for the pretrained tiny base's, 4 and 16 for Wan 2.2's. Nothing else may assume a factor."""
    return int(vae.config.scale_factor_temporal), int(vae.config.scale_factor_spatial)


def latent_frames(num_frames: int, temporal_scale: int) -> int:
    return (num_frames - 1) // temporal_scale + 1


def video_shape_problem(pipe, height: int, width: int, num_frames: int) -> str | None:
    """Why this model cannot take clips of this shape (its VAE's compression times its transformer's patch must
    divide height and width; its VAE's temporal compression num_frames - 1), else None."""
    temporal, spatial = vae_scale_factors(pipe.vae)
    _, patch_h, patch_w = pipe.transformer.config.patch_size
    multiple = spatial * max(patch_h, patch_w)
    if height % multiple or width % multiple:
        return f"height and width must be multiples of {multiple} for this model (got {height}x{width})"
    if (num_frames - 1) % temporal:
        return f"num_frames must be {temporal}k+1 for this model (got {num_frames})"
    return None


# --------------------------------------------------------------------------------------------- objective
@dataclass
class FlowBatch:
    """The random draws of one training micro-batch; drawn from a seeded generator so runs are reproducible."""

    noise: torch.Tensor  # [B,C,T,H,W]
    sigma: torch.Tensor  # [B]
    cond_frames: torch.Tensor  # [B] long, latent frames kept clean
    drop_prompt: torch.Tensor  # [B] bool, classifier-free-guidance dropout


def draw_flow_batch(
    shape, conditional_frames: dict[int, float], cfg_dropout: float, generator: torch.Generator
) -> FlowBatch:
    b = shape[0]
    noise = torch.randn(shape, generator=generator)
    t = torch.sigmoid(torch.randn(b, generator=generator))  # logit-normal timesteps
    sigma = TIMESTEP_SHIFT * t / (1 + (TIMESTEP_SHIFT - 1) * t)
    counts = torch.tensor(sorted(conditional_frames))
    probs = torch.tensor([conditional_frames[int(k)] for k in counts], dtype=torch.float)
    cond = counts[torch.multinomial(probs, b, replacement=True, generator=generator)]
    drop = torch.rand(b, generator=generator) < cfg_dropout
    return FlowBatch(noise=noise, sigma=sigma, cond_frames=cond, drop_prompt=drop)


def flow_matching_loss(
    transformer,
    clean: torch.Tensor,
    prompt_embeds: torch.Tensor,
    draw: FlowBatch,
    conditional_frame_timestep: float,
    *,
    spatial_scale: int,
) -> torch.Tensor:
    """The recipe's rectified-flow loss: predict velocity noise - clean on the frames that are not conditions.

    Normalised as the recipe does: the mean over ALL latent elements [B,C,T,H,W], the conditioning frames
    contributing 0. So the value (and the gradient) of a draw with k conditioning frames is (T-k)/T of the
    per-denoised-element mean; this keeps loss curves comparable with the recipe's and the gradient scale
    (clipped at max_grad_norm) the recipe's. `spatial_scale` is the VAE's (`vae_scale_factors`): the padding
    mask is pixel-sized, as the pipeline builds it.
    """
    b, c, t, h, w = clean.shape
    device, dtype = clean.device, clean.dtype
    noise, sigma = draw.noise.to(device, dtype), draw.sigma.to(device, dtype).view(b, 1, 1, 1, 1)
    frame_index = torch.arange(t, device=device).view(1, 1, t, 1, 1)
    cond_indicator = (frame_index < draw.cond_frames.to(device).view(b, 1, 1, 1, 1)).to(dtype)  # [B,1,T,1,1]
    cond_mask = cond_indicator.expand(b, 1, t, h, w)
    noisy = sigma * noise + (1 - sigma) * clean
    hidden = cond_mask * clean + (1 - cond_mask) * noisy
    timestep = cond_indicator * conditional_frame_timestep + (1 - cond_indicator) * sigma
    embeds = prompt_embeds * (~draw.drop_prompt.to(device)).to(prompt_embeds.dtype).view(b, 1, 1)
    model_dtype = next(p for p in transformer.parameters() if not p.requires_grad).dtype
    padding_mask = clean.new_zeros(1, 1, h * spatial_scale, w * spatial_scale, dtype=model_dtype)
    pred = transformer(
        hidden_states=hidden.to(model_dtype),
        condition_mask=cond_mask.to(model_dtype),
        timestep=timestep,
        encoder_hidden_states=embeds.to(model_dtype),
        padding_mask=padding_mask,
        return_dict=False,
    )[0].float()
    weight = 1 - cond_mask  # loss only where the model had to denoise
    return ((pred - (noise - clean)) ** 2 * weight).mean()


def assert_finite(loss: torch.Tensor, step: int) -> None:
    if not math.isfinite(loss.item()):
        raise FloatingPointError(
            f"the loss became {loss.item()} at step {step}; lower learning_rate or use mixed_precision bf16."
        )
