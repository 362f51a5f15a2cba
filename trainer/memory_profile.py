"""A model's memory profile: what `trainer.spec.memory` (torch-free) needs to predict a run's peak GPU memory.

Two parts, both computed here with torch and stored as JSON so that the studio never imports torch:

- parameter counts, exact: each component (transformer, VAE, text encoder) built from its config on the meta
  device (no weights, no memory), and every Linear of the transformer's blocks with its shape (adapter sizes
  follow from rank and target_modules);
- activation coefficients: the bytes autograd saves for backward in one training forward pass (the trainer's own
  `flow_matching_loss` under autocast, adapters attached, checkpointing as configured), counted with saved-tensor
  hooks (each storage once, parameters excluded), measured on the real block architecture at small token counts
  on the CPU with 1 and 2 blocks, and fitted by least squares to

      saved(t, L, r) = c0 + c1 t + c2 L + c3 L t + c4 L t r       (t video tokens, L blocks, r rank)

  per adapter type, precision and checkpointing (off, every_block). Blocks are identical, attention kernels save
  O(t) (the output and its log-sum-exp, never the t x t matrix), so the bytes are linear in t per block.

`python -m trainer.memory_profile` rewrites trainer/spec/memory_profiles.json for the shipped models; docs/memory.md
says how the coefficients become a peak and what is not modelled.
"""

from __future__ import annotations

import argparse
import copy
import gc
import hashlib
import json
import sys
import weakref
from pathlib import Path

import numpy as np
import torch

from trainer import adapters, cosmos, speed
from trainer.spec.config import DEFAULT_HUB_MODEL, RECIPE_TARGET_MODULES, TrainConfig
from trainer.spec.embedded import TINY_MODEL, tiny_model_dir
from trainer.spec.memory import PROFILES_FILE, TEXT_TOKENS

# Latent shapes (frames T, height h, width w) measured for the fit, and one the fit never sees (the tests check
# the prediction there). Tokens: T * h/2 * w/2 (the transformer's patch is 1x2x2).
FIT_SHAPES = ((2, 8, 8), (3, 8, 16))
FIT_RANKS = (4, 16)
CHECK_SHAPE = (4, 12, 20)
PRECISIONS = {"bf16": torch.bfloat16, "fp32": torch.float32}
POLICIES = ("off", "every_block")


def component_configs(source: Path) -> dict[str, dict]:
    """The transformer, vae and text_encoder configs of a pipeline folder (`<name>/config.json`) or of a folder
    of `<name>.json` files (bench/configs)."""
    out = {}
    for name in ("transformer", "vae", "text_encoder"):
        path = source / name / "config.json"
        path = path if path.exists() else source / f"{name}.json"
        out[name] = {k: v for k, v in json.loads(path.read_text()).items() if not k.startswith("_")}
    return out


def pixels_per_token(configs: dict[str, dict]) -> dict[str, int]:
    """The VAE's temporal compression, the patch's latent frames, and the pixels per token side (the VAE's spatial
    compression times the patch)."""
    patch_t, patch_h, _ = configs["transformer"]["patch_size"]
    vae = configs["vae"]
    return {
        "frames": vae["scale_factor_temporal"],
        "patch_frames": patch_t,
        "pixels": vae["scale_factor_spatial"] * patch_h,
    }


def configs_digest(configs: dict[str, dict]) -> str:
    return hashlib.sha256(json.dumps(configs, sort_keys=True).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------------- parameters
def build_transformer(config: dict, device: str = "meta", layers: int | None = None):
    from diffusers import CosmosTransformer3DModel

    config = {**config, **({"num_layers": layers} if layers else {})}
    with torch.device(device):
        return CosmosTransformer3DModel.from_config(config)


def count_parameters(configs: dict[str, dict]) -> dict:
    """Exact parameter counts from the configs (built on the meta device) and the blocks' Linear shapes."""
    from diffusers import AutoencoderKLWan
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    transformer = build_transformer(configs["transformer"])
    with torch.device("meta"):
        vae = AutoencoderKLWan.from_config(configs["vae"])
        text_config = Qwen2_5_VLConfig.from_dict(configs["text_encoder"])
        text_encoder = Qwen2_5_VLForConditionalGeneration._from_config(text_config)
    linears: dict[str, list[int]] = {}
    for name, module in transformer.transformer_blocks.named_modules():
        if isinstance(module, torch.nn.Linear):
            key = "transformer_blocks." + name.partition(".")[2]  # the block index dropped: all blocks alike
            entry = linears.setdefault(key, [module.in_features, module.out_features, 0])
            entry[2] += 1
    proj = getattr(transformer, "crossattn_proj", None)
    return {
        "transformer": _numel(transformer),
        "crossattn_proj": _numel(proj) if proj is not None else 0,
        "vae": _numel(vae),
        "text_encoder": _numel(text_encoder),
        "layers": transformer.config.num_layers,
        "hidden": transformer.config.num_attention_heads * transformer.config.attention_head_dim,
        "heads": transformer.config.num_attention_heads,
        "linears": linears,
    }


def _numel(module) -> int:
    return sum(p.numel() for p in module.parameters())


# --------------------------------------------------------------------------------------------- activations
class SavedBytes:
    """Counts the bytes autograd keeps for backward: each storage once, parameters (weights) excluded. A tensor
    packed by a branch whose result is dropped (peft's DoRA computes its detached weight norm that way) is freed
    with that branch, so only the tensors still alive when the forward has returned count."""

    def __init__(self, module: torch.nn.Module):
        self.excluded = {p.untyped_storage().data_ptr() for p in module.parameters()}
        self.packed: list[weakref.ref] = []

    def pack(self, tensor: torch.Tensor) -> torch.Tensor:
        self.packed.append(weakref.ref(tensor))
        return tensor

    @property
    def total(self) -> int:
        storages = {}
        for ref in self.packed:
            tensor = ref()
            if tensor is not None:
                storage = tensor.untyped_storage()
                storages[storage.data_ptr()] = storage.nbytes()
        return sum(n for ptr, n in storages.items() if ptr not in self.excluded)


def measure_saved_bytes(base, shape, rank: int, adapter: str, precision: str, policy: str) -> int:
    """Bytes saved for backward by one training forward of `base` (a transformer, copied here) at latent
    `shape` (T, h, w), as the trainer runs it: adapters attached in fp32, autocast, checkpointing `policy`."""
    transformer = copy.deepcopy(base)
    cfg = TrainConfig(
        data="x", rank=rank, alpha=float(rank), adapter=adapter, target_modules=list(RECIPE_TARGET_MODULES)
    )
    torch.manual_seed(0)
    adapters.attach(transformer, cfg)
    if policy != "off":
        for block in transformer.transformer_blocks:
            speed.checkpoint_block(block, policy)
    t, h, w = shape
    generator = torch.Generator().manual_seed(0)
    clean = torch.randn(1, 16, t, h, w, generator=generator)
    embeds = torch.randn(1, TEXT_TOKENS, transformer.config.text_embed_dim, generator=generator)
    draw = cosmos.draw_flow_batch(clean.shape, {1: 1.0}, 0.0, generator)
    counter = SavedBytes(transformer)
    bf16 = precision == "bf16"
    with torch.autograd.graph.saved_tensors_hooks(counter.pack, lambda x: x):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            # spatial_scale only sizes the padding mask, which needs no gradient: any VAE's factor gives these bytes
            loss = cosmos.flow_matching_loss(transformer, clean, embeds, draw, 1e-4, spatial_scale=8)
    total = counter.total  # while `loss` holds the graph
    del loss, transformer, counter
    gc.collect()  # peft's and diffusers' hooks make reference cycles: free this copy before the next one
    return total


def base_transformer(config: dict, layers: int, precision: str):
    """The architecture of `config` with `layers` blocks and random weights, cached-prompt shaped (the frozen
    prompt projection is skipped exactly as the trainer's cache does), in the training precision."""
    config = {**config, "use_crossattn_projection": False, "text_embed_dim": config["encoder_hidden_states_channels"]}
    from diffusers.utils import logging as diffusers_logging

    torch.manual_seed(0)
    model = build_transformer(config, "cpu", layers)
    quiet = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()  # `.to(dtype)` warns about fp32 modules this config does not have
    model = model.to(PRECISIONS[precision]).eval()
    diffusers_logging.set_verbosity(quiet)
    return model


def features(tokens: int, layers: int, rank: int) -> list[float]:
    return [1.0, tokens, layers, layers * tokens, layers * tokens * rank]


def tokens_of(shape) -> int:
    t, h, w = shape
    return t * (h // 2) * (w // 2)


def fit_activations(
    config: dict, adapter: str, precision: str, policies=POLICIES, shapes=FIT_SHAPES, ranks=FIT_RANKS
) -> dict[str, list[float]]:
    """Coefficients of `features` per checkpointing policy, least squares over 1 and 2 blocks, `shapes`, `ranks`."""
    bases = {layers: base_transformer(config, layers, precision) for layers in (1, 2)}
    out = {}
    for policy in policies:
        rows, ys = [], []
        for layers, base in bases.items():
            for shape in shapes:
                for rank in ranks if layers == 1 or shape == shapes[0] else ranks[:1]:
                    rows.append(features(tokens_of(shape), layers, rank))
                    ys.append(measure_saved_bytes(base, shape, rank, adapter, precision, policy))
        coef, *_ = np.linalg.lstsq(np.array(rows, float), np.array(ys, float), rcond=None)
        out[policy] = [round(float(c), 4) for c in coef]
        print(f"memory_profile: {adapter} {precision} {policy}: {out[policy]}", file=sys.stderr, flush=True)
    return out


# --------------------------------------------------------------------------------------------- the profile
def profile(source: Path, name: str) -> dict:
    """The memory profile of the pipeline whose configs are in `source`."""
    configs = component_configs(source)
    activations = {
        adapter: {precision: fit_activations(configs["transformer"], adapter, precision) for precision in PRECISIONS}
        for adapter in ("lora", "dora")
    }
    return {
        "name": name,
        "configs_sha256": configs_digest(configs),
        "text_tokens": TEXT_TOKENS,
        "block": {k: configs["transformer"].get(k) for k in BLOCK_KEYS},
        "pixels_per_token": pixels_per_token(configs),
        "parameters": count_parameters(configs),
        "activations": activations,
    }


def store_profile(folder: Path) -> Path:
    """Measures the profile of a local pipeline folder into the user cache, where `trainer.spec.memory` finds it.
    A folder whose transformer has the block shape of a shipped model reuses that model's activation fit (its
    blocks are the same; only the counts differ), so only an unknown architecture is measured (minutes)."""
    from trainer.spec.memory import load_profile, stored_profile_path

    configs = component_configs(folder)
    name = str(folder)
    shipped = [load_profile(known) for known in SHIPPED]
    block = _block_shape(configs["transformer"])
    same = next((p for p in shipped if p and _block_shape(p["block"]) == block), None)
    data = {
        "name": name,
        "configs_sha256": configs_digest(configs),
        "text_tokens": TEXT_TOKENS,
        "block": configs["transformer"],
        "pixels_per_token": pixels_per_token(configs),
        "parameters": count_parameters(configs),
        "activations": same["activations"] if same else profile(folder, name)["activations"],
    }
    path = stored_profile_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path


BLOCK_KEYS = (
    "num_attention_heads",
    "attention_head_dim",
    "mlp_ratio",
    "text_embed_dim",
    "adaln_lora_dim",
    "patch_size",
)


def _block_shape(transformer_config: dict) -> tuple:
    return tuple(json.dumps(transformer_config.get(k)) for k in BLOCK_KEYS)


SHIPPED = ("tiny", DEFAULT_HUB_MODEL)


def shipped_source(model: str) -> Path:
    """Where a shipped model's configs are: the embedded tiny pipeline, or bench/configs (the 2B's real ones)."""
    return tiny_model_dir() if model == TINY_MODEL else Path(__file__).resolve().parents[1] / "bench" / "configs"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Rewrite trainer/spec/memory_profiles.json (minutes on a CPU).")
    parser.add_argument("--out", type=Path, default=PROFILES_FILE)
    args = parser.parse_args(argv)
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    profiles = {}
    for name in SHIPPED:
        print(f"memory_profile: {name}", file=sys.stderr, flush=True)
        profiles[name] = profile(shipped_source(name), name)
    args.out.write_text(json.dumps(profiles, indent=1) + "\n")
    print(f"memory_profile: wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
