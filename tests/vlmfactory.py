"""A tiny randomly initialised Qwen2.5-VL built offline (config, tokenizer and image processor made in code), for
driving captioning end to end on CPU. Its captions are noise: it checks the plumbing, never the words."""

from __future__ import annotations

from pathlib import Path

TINY_VLM_SEED = 0


def build_tiny_vlm(out_dir: Path) -> Path:
    """Write a Qwen2.5-VL folder of a few hundred KB (config.json, weights, tokenizer, preprocessor_config.json)."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessorPil

    from trainer.tinyworld.model import build_tokenizer

    tokenizer = build_tokenizer(400)
    token = tokenizer.convert_tokens_to_ids
    text_config = {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "max_position_embeddings": 4096,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [2, 3, 3]},
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "bos_token_id": None,
    }
    vision_config = {
        "depth": 1,
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_heads": 2,
        "out_hidden_size": 32,
        "fullatt_block_indexes": [0],
    }
    config = Qwen2_5_VLConfig(
        text_config=text_config,
        vision_config=vision_config,
        vocab_size=len(tokenizer),
        image_token_id=token("<|image_pad|>"),
        video_token_id=token("<|video_pad|>"),
        vision_start_token_id=token("<|vision_start|>"),
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(TINY_VLM_SEED)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = None  # random weights: never stop early, so every caption has text
    model.generation_config.max_new_tokens = 8  # and stop soon: the captions are noise whatever their length
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    Qwen2VLImageProcessorPil().save_pretrained(out_dir)
    return out_dir
