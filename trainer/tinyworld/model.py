"""The embedded tiny Cosmos Predict 2.5 pipeline: the real five components, small, built offline.

Same classes, same layout on disk and same code path as `nvidia/Cosmos-Predict2.5-2B`; only the sizes differ.
Building is deterministic (fixed seed, a tokenizer trained in-process on a fixed corpus), so two builds give
identical weights. `build_tiny` writes these random weights; `trainer/pretrain_tiny/` pre-trains the same
components (the VAE on robot scenes of a seed no dataset uses, the DiT on the shapes world) into
`trainer/tinyworld/assets/tiny-base/`, which is what `model: "tiny"` loads; its tiny_spec.json gives its sizes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

# The system prompt and chat template of Qwen2-VL, which the Cosmos pipeline's `_get_prompt_embeds` applies.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}{% if content['type'] == 'text' %}{{ content['text'] }}"
    "{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

# Words the tiny tokenizer learns whole: the prompts of the built-in worlds and common video-caption words.
_CORPUS = """
You are a helpful assistant who will provide prompts to an image generator.
The left arm picks up the green cucumber and places it in the bowl.
The right arm picks up the red apple and places it in the bowl.
The left arm picks up the yellow banana and places it in the bowl.
The right arm picks up the blue cube and places it in the bowl.
The left arm picks up the orange carrot and places it in the bowl.
The right arm picks up the purple grape and places it in the bowl.
The robot arm is performing a task. A robot gripper grasps an object on the table and moves it to the plate.
A red circle moves to the right and bounces off the wall while a blue square drifts down.
A green triangle moves to the left, a yellow circle moves up, a white square moves down and grows, shrinks.
A purple circle drifts slowly across a dark background and bounces off the top wall and the bottom wall.
An orange square slides diagonally, a cyan triangle spins, two shapes collide, one shape stays still.
The camera is fixed. The scene shows a table, a bowl, a cup, a box, a bottle, a kitchen, a hand, a person.
The video shows smooth motion, high quality, static background, slow, fast, small, large, bright, dark.
"""


# Spatial compression -> (dim_mult, temperal_downsample) of AutoencoderKLWan: every stage after the first halves
# height and width, the flagged ones also time (the diffusers pipeline reads its factors from these flags too).
VAE_LAYOUTS = {8: ((1, 2, 4, 4), (False, True, True)), 4: ((1, 2, 4), (True, True))}


@dataclass(frozen=True)
class TinySpec:
    """Sizes of the tiny pipeline. Constraints come from the real architecture: the DiT's RoPE splits
    attention_head_dim three ways (>= 12); the text projection input is text_layers x text_hidden; Qwen's
    mrope_section must sum to text head_dim / 2; the VAE keeps z_dim 16 and 4x temporal compression. Its spatial
    compression is 8x (as the real model's) or 4x (one downsampling fewer: the pretrained tiny base, whose 64x64
    frames would keep too little at 8x); `dit_patch` 4 with a 4x VAE keeps the 8x VAE's token count.
    Sized for CPU: the pretrained weights are ~8 MB, and a LoRA step on 64x64x17 clips takes well under a second.
    dit_text_dim differs from text_layers x text_hidden on purpose, as in the real model (1024 vs 100352)."""

    dit_heads: int = 4
    dit_head_dim: int = 32
    dit_layers: int = 4
    dit_text_dim: int = 32
    dit_adaln_lora_dim: int = 32
    vae_base_dim: int = 8
    vae_spatial: int = 8  # 8 or 4: the VAE's spatial compression
    dit_patch: int = 2  # the DiT's spatial patch (1, p, p)
    text_hidden: int = 32
    text_layers: int = 2
    text_heads: int = 2
    text_intermediate: int = 64
    vocab_size: int = 400
    seed: int = 0


def build_tokenizer(vocab_size: int):
    """A byte-level BPE tokenizer trained on the fixed corpus, with Qwen's special tokens and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(SPECIAL_TOKENS),
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS.strip().splitlines(), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        chat_template=CHAT_TEMPLATE,
        model_max_length=32768,
    )


def build_components(spec: TinySpec = TinySpec()) -> dict:
    """The five pipeline components with deterministic random weights."""
    import torch
    from diffusers import AutoencoderKLWan, CosmosTransformer3DModel, UniPCMultistepScheduler
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    tokenizer = build_tokenizer(spec.vocab_size)
    torch.manual_seed(spec.seed)
    transformer = CosmosTransformer3DModel(
        in_channels=17,
        out_channels=16,
        num_attention_heads=spec.dit_heads,
        attention_head_dim=spec.dit_head_dim,
        num_layers=spec.dit_layers,
        mlp_ratio=4.0,
        text_embed_dim=spec.dit_text_dim,
        adaln_lora_dim=spec.dit_adaln_lora_dim,
        max_size=(128, 240, 240),
        patch_size=(1, spec.dit_patch, spec.dit_patch),
        rope_scale=(1.0, 3.0, 3.0),
        concat_padding_mask=True,
        extra_pos_embed_type=None,
        use_crossattn_projection=True,
        crossattn_proj_in_channels=spec.text_layers * spec.text_hidden,
        encoder_hidden_states_channels=spec.dit_text_dim,
    )
    if spec.vae_spatial not in VAE_LAYOUTS:
        raise ValueError(f"vae_spatial must be one of {sorted(VAE_LAYOUTS)}, not {spec.vae_spatial}.")
    dim_mult, temporal_downsample = VAE_LAYOUTS[spec.vae_spatial]
    vae = AutoencoderKLWan(
        base_dim=spec.vae_base_dim,
        z_dim=16,
        dim_mult=list(dim_mult),
        num_res_blocks=1,
        attn_scales=[],
        temperal_downsample=list(temporal_downsample),
        scale_factor_spatial=spec.vae_spatial,
        scale_factor_temporal=4,
    )
    head_dim = spec.text_hidden // spec.text_heads
    third = head_dim // 2 // 3
    text_config = {
        "vocab_size": len(tokenizer),
        "hidden_size": spec.text_hidden,
        "intermediate_size": spec.text_intermediate,
        "num_hidden_layers": spec.text_layers,
        "num_attention_heads": spec.text_heads,
        "num_key_value_heads": 1,
        "max_position_embeddings": 1024,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 1000000.0,
            "mrope_section": [head_dim // 2 - 2 * third, third, third],
        },
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "bos_token_id": None,
    }
    vision_config = {
        "depth": 1,
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_heads": 2,
        "out_hidden_size": spec.text_hidden,
        "fullatt_block_indexes": [0],
    }
    config = Qwen2_5_VLConfig(
        text_config=text_config,
        vision_config=vision_config,
        vocab_size=len(tokenizer),
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    text_encoder = Qwen2_5_VLForConditionalGeneration(config).eval()
    scheduler = UniPCMultistepScheduler(
        use_karras_sigmas=True,
        use_flow_sigmas=True,
        prediction_type="flow_prediction",
        sigma_max=200.0,
        sigma_min=0.01,
    )
    return dict(transformer=transformer, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler)


def build_tiny(out_dir: str | Path, spec: TinySpec = TinySpec()) -> Path:
    """Write the tiny pipeline with random weights in diffusers layout (model_index.json + one folder each)."""
    return save_pipeline(build_components(spec), out_dir, spec)


def save_pipeline(components: dict, out_dir: str | Path, spec: TinySpec = TinySpec()) -> Path:
    """Write five components in diffusers layout, with no safety checker in model_index.json."""
    from trainer.cosmos import PIPELINE_CLASS, NoGuardrail
    from trainer.cosmos import save_pipeline as save_pipeline_folder

    out_dir = Path(out_dir)
    save_pipeline_folder(PIPELINE_CLASS(**components, safety_checker=NoGuardrail()), out_dir)
    (out_dir / "tiny_spec.json").write_text(json.dumps(asdict(spec), indent=2))
    return out_dir


def spec_digest(spec: TinySpec = TinySpec()) -> str:
    """Names the cached build: a new spec or library version gets a fresh folder, never a stale one."""
    import hashlib

    import diffusers
    import transformers

    key = json.dumps([asdict(spec), diffusers.__version__, transformers.__version__, _CORPUS, CHAT_TEMPLATE])
    return hashlib.sha256(key.encode()).hexdigest()[:12]
