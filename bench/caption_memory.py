"""The GPU memory `trainer caption` needs with Cosmos-Reason1-7B (a Qwen2.5-VL-7B), computed from the model's
architecture and dtype, not measured: the model is built on the meta device (no weights, no download), its
parameters counted, and the KV cache of one caption's tokens added.

    python -m bench.caption_memory

Tokens per caption: `FRAMES_PER_CLIP` frames of at most `MAX_PIXELS` pixels each (one token per 28x28 patch after
Qwen2.5-VL's 2x2 merge), the prompt, and the longest caption (`MAX_NEW_TOKENS["long"]`).
"""

from __future__ import annotations

import torch
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

from trainer.caption_files import FRAMES_PER_CLIP, MAX_NEW_TOKENS
from trainer.captioning import MAX_PIXELS

PROMPT_TOKENS = 200  # the default template with the chat format around it, rounded up
# Qwen2.5-VL-7B-Instruct's config.json (Cosmos-Reason1-7B is a post-training of it, same shapes).
TEXT = {
    "vocab_size": 152064,
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "num_hidden_layers": 28,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
    "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
    "tie_word_embeddings": False,
}
VISION = {
    "depth": 32,
    "hidden_size": 1280,
    "intermediate_size": 3420,
    "num_heads": 16,
    "out_hidden_size": 3584,
    "patch_size": 14,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
    "window_size": 112,
    "fullatt_block_indexes": [7, 15, 23, 31],
}


def main() -> None:
    config = Qwen2_5_VLConfig(text_config=TEXT, vision_config=VISION, vocab_size=TEXT["vocab_size"])
    with torch.device("meta"):
        model = Qwen2_5_VLForConditionalGeneration(config)
    params = sum(p.numel() for p in model.parameters())
    weights = 2 * params  # bf16
    tokens = FRAMES_PER_CLIP * MAX_PIXELS // 28**2 + PROMPT_TOKENS + MAX_NEW_TOKENS["long"]
    head_dim = TEXT["hidden_size"] // TEXT["num_attention_heads"]
    kv_cache = tokens * 2 * TEXT["num_hidden_layers"] * TEXT["num_key_value_heads"] * head_dim * 2
    # The largest transient of the prefill: fp32 logits over every prompt token, if a version materialises them.
    logits = tokens * TEXT["vocab_size"] * 4
    print(f"parameters        {params / 1e9:.2f} B")
    print(f"weights (bf16)    {weights / 2**30:.1f} GiB")
    print(f"KV cache          {kv_cache / 2**30:.2f} GiB for {tokens} tokens")
    print(f"prefill logits    {logits / 2**30:.2f} GiB at most")
    print(f"total, computed   {(weights + kv_cache + logits) / 2**30:.1f} GiB at most")


if __name__ == "__main__":
    main()
