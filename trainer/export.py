"""Merged export: the base transformer with an adapter fused into its weights, loadable without peft.

Only the transformer is loaded, fused and written (the VAE and the 8B text encoder are untouched by an adapter
and stay the base model's): `CosmosTransformer3DModel.from_pretrained(OUT)` then
`from_pretrained(BASE, transformer=...)`. `whole_pipeline=True` writes a complete pipeline folder instead.
The adapter goes in through diffusers' own loader (`lora_state_dict` + `load_lora_into_transformer`, what
`pipe.load_lora_weights` does), so alpha/rank and DoRA magnitudes fuse exactly as they load.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from trainer import cosmos
from trainer.spec.run_folder import CARD_FILE, WEIGHTS_FILE

MERGE_RECORD = "merged_from.json"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def base_of(adapter_dir: Path) -> tuple[str, str | None, dict]:
    """The base model the adapter's card names, at the exact commit when the card has one."""
    card_path = adapter_dir / CARD_FILE
    if not card_path.is_file():
        raise ValueError(f"{adapter_dir} has no {CARD_FILE}; pass --model (and --revision) to name its base model.")
    card = json.loads(card_path.read_text())
    return card["base_model"], card.get("commit") or card.get("revision") or None, card


def export_merged(
    adapter_dir: str | Path,
    out_dir: str | Path,
    model: str | None = None,
    revision: str | None = None,
    scale: float = 1.0,
    dtype: str = "auto",
    whole_pipeline: bool = False,
) -> Path:
    adapter_dir, out_dir = Path(adapter_dir), Path(out_dir)
    if not (adapter_dir / WEIGHTS_FILE).is_file():
        raise ValueError(f"{adapter_dir} has no {WEIGHTS_FILE}; point at an adapter folder.")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ValueError(f"{out_dir} is not empty; choose a new folder so nothing is overwritten.")
    card: dict = {}
    if model is None:
        model, card_revision, card = base_of(adapter_dir)
        revision = revision or card_revision
    if model == cosmos.TINY_MODEL:
        revision = None  # the card's revision names the embedded folder, not a Hub revision
    torch_dtype = (
        DTYPES[dtype] if dtype != "auto" else (torch.float32 if model == cosmos.TINY_MODEL else torch.bfloat16)
    )
    source = cosmos.resolve_model(model, revision)
    if whole_pipeline:
        pipe = cosmos.PIPELINE_CLASS.from_pretrained(source, dtype=torch_dtype, safety_checker=cosmos.NoGuardrail())
        transformer = pipe.transformer
    else:
        from diffusers import CosmosTransformer3DModel

        transformer = CosmosTransformer3DModel.from_pretrained(source, subfolder="transformer", dtype=torch_dtype)
    fuse(transformer, adapter_dir, scale)
    out_dir.mkdir(parents=True, exist_ok=True)
    if whole_pipeline:
        cosmos.save_pipeline(pipe, out_dir)
    else:
        transformer.save_pretrained(out_dir, safe_serialization=True)
    record = {
        "adapter": str(adapter_dir.resolve()),
        "scale": scale,
        "dtype": str(torch_dtype).removeprefix("torch."),
        "layout": "pipeline" if whole_pipeline else "transformer",
        "base": cosmos.model_identity(model, revision, source),
        "adapter_card": card,
    }
    (out_dir / MERGE_RECORD).write_text(json.dumps(record, indent=2, default=str))
    return out_dir


def fuse(transformer: torch.nn.Module, adapter_dir: Path, scale: float) -> None:
    """Load the adapter as diffusers does, fold it into the base weights at `scale`, and drop the peft layers."""
    cls = cosmos.PIPELINE_CLASS
    state, metadata = cls.lora_state_dict(str(adapter_dir), return_lora_metadata=True)
    cls.load_lora_into_transformer(state, transformer=transformer, adapter_name="merged", metadata=metadata)
    transformer.fuse_lora(lora_scale=scale, adapter_names=["merged"])
    transformer.unload_lora()  # keeps the fused weights, removes the peft wrappers
    if any("lora" in name for name, _ in transformer.named_parameters()):
        raise RuntimeError("the adapter could not be fused: lora parameters remain after unloading")
