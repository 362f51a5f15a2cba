"""LoRA/DoRA adapters on the Cosmos transformer: attach, save in the diffusers format, describe with a card.

The saved file is what plain diffusers loads (`pipe.load_lora_weights(dir)`). Every key has one naming, peft's
as diffusers saves peft models: `transformer.<module>.lora_A.weight`, `.lora_B.weight` and, for DoRA,
`.lora_magnitude_vector` (diffusers' `convert_state_dict_to_diffusers` would rename attention layers only, to
`lora.down/up`, and leave the feed-forward ones: a mixed file). The LoRA config is stored as metadata beside the
weights: without it an adapter whose alpha differs from its rank reloads with the wrong scale (measured).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict

from trainer import __version__
from trainer.lerobot import read_provenance
from trainer.spec.config import TrainConfig
from trainer.spec.embedded import resolve_data
from trainer.spec.run_folder import CARD_FILE, CARD_KEYS, MODEL_CARD_FILE


def lora_config(cfg: TrainConfig) -> LoraConfig:
    return LoraConfig(
        r=cfg.rank,
        lora_alpha=cfg.alpha,
        target_modules=list(cfg.target_modules),
        use_dora=cfg.adapter == "dora",
        init_lora_weights=True,
    )


def attach(transformer: torch.nn.Module, cfg: TrainConfig) -> LoraConfig:
    """Freeze the transformer, add the adapter, and keep the adapter's parameters in fp32 (recipe: stability
    under bf16). Fails with the field name when a target module matches nothing."""
    transformer.requires_grad_(False)
    config = lora_config(cfg)
    try:
        transformer.add_adapter(config)
    except ValueError as exc:
        raise ValueError(f"target_modules: {exc}") from None
    for param in transformer.parameters():
        if param.requires_grad:
            param.data = param.data.float()
    return config


def trainable_parameters(transformer: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for p in transformer.parameters() if p.requires_grad]


def adapter_state(transformer: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The adapter's weights in peft naming (for checkpoints: loads back with `load_adapter_state`)."""
    return {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(transformer).items()}


def load_adapter_state(transformer: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    result = set_peft_model_state_dict(transformer, state)
    if getattr(result, "unexpected_keys", None):
        raise ValueError(f"checkpoint holds weights this adapter does not have: {result.unexpected_keys[:3]}")


def save_adapter(out_dir: Path, transformer: torch.nn.Module, config: LoraConfig, card: dict) -> Path:
    """Write `pytorch_lora_weights.safetensors` (+ LoRA metadata), `adapter_card.json` and a README model card."""
    from trainer.cosmos import PIPELINE_CLASS

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    PIPELINE_CLASS.save_lora_weights(
        out_dir,
        transformer_lora_layers=adapter_state(transformer),
        transformer_lora_adapter_metadata=config.to_dict(),
        safe_serialization=True,
    )
    (out_dir / CARD_FILE).write_text(json.dumps(card, indent=2, default=str))
    (out_dir / MODEL_CARD_FILE).write_text(model_card_markdown(card, str(out_dir.resolve())))
    return out_dir


def make_card(cfg: TrainConfig, base: dict, dataset: dict, steps: int, final_loss: float | None) -> dict:
    """Provenance of an adapter: what it was trained from, how, and on which exact files (keys: CARD_KEYS); for
    an imported LeRobot dataset, also which dataset, camera and episodes those files came from."""
    card = {
        "base_model": base["base_model"],
        "revision": base["revision"],
        "commit": base.get("commit"),
        "adapter": cfg.adapter,
        "rank": cfg.rank,
        "alpha": cfg.alpha,
        "target_modules": list(cfg.target_modules),
        "dataset": {"path": cfg.data, **dataset},
        "steps": steps,
        "final_loss": final_loss,
        "config": cfg.to_dict(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "project_version": __version__,
        "dataset_provenance": read_provenance(resolve_data(cfg.data)),
        "evaluation": None,  # written by `evaluate --card`
    }
    assert card.keys() == CARD_KEYS.keys(), "run_folder.CARD_KEYS and the card written here must match"
    return card


def model_card_markdown(card: dict, adapter_ref: str = "path/to/this/folder") -> str:
    """The README.md model card (trainer.model_card)."""
    from trainer import model_card

    return model_card.render(card, adapter_ref)
