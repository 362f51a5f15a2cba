"""The adapter's README.md: Hugging Face model-card front matter, provenance, settings, scores and code that runs.

Torch-free (the studio renders it when publishing). The code block is plain diffusers, written for the adapter's
base model: the Hub model (with NVIDIA's guardrail, or an explicit stand-in), or the embedded tiny base loaded
from its folder in a clone of this project (`trainer/tinyworld/assets/tiny-base`).
"""

from __future__ import annotations

import json
from typing import Any

from trainer.spec.embedded import TINY_MODEL
from trainer.spec.video_shape import RECIPE_SIZE

TINY_BASE_PATH = "trainer/tinyworld/assets/tiny-base"  # relative to a clone of Cosmos LoRA Studio
NVIDIA_LICENSE = {
    "license": "other",
    "license_name": "nvidia-open-model-license",
    "license_link": "https://www.nvidia.com/en-us/agreement/data-center/nvidia-open-model-license/",
}
EVALUATION_FILE = "evaluation.json"  # `python -m trainer evaluate --json` output, kept beside the weights
CODE_START = "```python\n"


def is_hub_id(model: str) -> bool:
    """owner/name, the form the Hub's base_model field accepts (not a local path, not "tiny")."""
    parts = model.split("/")
    return len(parts) == 2 and all(parts) and not model.startswith((".", "~")) and model != TINY_MODEL


def front_matter(card: dict) -> dict[str, Any]:
    """The Hub metadata: base model and relation, library, tags and, for NVIDIA's models, their license."""
    meta: dict[str, Any] = {}
    if is_hub_id(card["base_model"]):
        meta.update(base_model=card["base_model"], base_model_relation="adapter")
    if card["base_model"].lower().startswith("nvidia/"):
        meta.update(NVIDIA_LICENSE)
    meta["library_name"] = "diffusers"
    kind = str(card.get("adapter", "lora")).lower()
    meta["tags"] = (
        ["lora"]
        + (["dora"] if kind == "dora" else [])
        + ["cosmos", "cosmos-predict2.5", "robotics", "image-to-video", "cosmos-lora-studio"]
    )
    meta["pipeline_tag"] = "image-to-video"
    return meta


def _yaml(meta: dict[str, Any]) -> str:
    # JSON scalars and flow lists are valid YAML, so no YAML library is needed.
    return "\n".join(f"{key}: {json.dumps(value)}" for key, value in meta.items())


def render(card: dict, adapter_ref: str, evaluation: dict | None = None, video: str | None = None) -> str:
    """The README.md text. `adapter_ref` is what `load_lora_weights` is given: this folder or the Hub repo id;
    `video` is the comparison video's path or URL when there is one."""
    loss = "n/a" if card.get("final_loss") is None else f"{card['final_loss']:.4f}"
    commit = f", commit `{card['commit']}`" if card.get("commit") else ""
    dataset = card.get("dataset", {})
    cfg = card.get("config", {})
    parts = [
        f"---\n{_yaml(front_matter(card))}\n---",
        f"# {card['adapter'].upper()} adapter for {card['base_model']}",
        "| | |\n|---|---|\n"
        f"| base model | `{card['base_model']}` (revision `{card['revision']}`{commit}) |\n"
        f"| adapter | {card['adapter']}, rank {card['rank']}, alpha {card['alpha']} |\n"
        f"| targets | {', '.join(card['target_modules'])} |\n"
        f"| training | {card['steps']} steps, final loss {loss} |\n"
        f"| settings | {_settings(cfg)} |\n"
        f"| dataset | `{dataset.get('path', '?')}`, {dataset.get('clips', '?')} clips, digest "
        f"`{dataset.get('digest', '?')}` |\n"
        f"| created | {card['created']} with Cosmos LoRA Studio {card['project_version']} |",
    ]
    if card["base_model"].lower().startswith("nvidia/"):
        parts.append(
            f"The base model is released under the [NVIDIA Open Model License]({NVIDIA_LICENSE['license_link']}); "
            "this adapter is a derivative of it and is used under the same terms."
        )
    if evaluation:
        parts.append(evaluation_markdown(evaluation))
    if video:
        parts.append(f'## Base vs adapter\n\n<video controls src="{video}"></video>')
    parts.append(usage_markdown(card, adapter_ref))
    parts.append("The full training config is in `adapter_card.json`.")
    return "\n\n".join(parts) + "\n"


def _settings(cfg: dict) -> str:
    keys = (
        "learning_rate",
        "batch_size",
        "gradient_accumulation",
        "height",
        "width",
        "num_frames",
        "mixed_precision",
        "seed",
    )
    return (
        ", ".join(f"{k} {cfg[k]:.3g}" if isinstance(cfg.get(k), float) else f"{k} {cfg[k]}" for k in keys if k in cfg)
        or "see adapter_card.json"
    )


def evaluation_markdown(result: dict) -> str:
    """`python -m trainer evaluate --json` output as a table: held-out scores of the base and each adapter."""
    rows = ["| variant | validation loss | PSNR (dB) | SSIM | hand accuracy |", "|---|---:|---:|---:|---:|"]
    for name, v in result.get("variants", {}).items():
        hand = "n/a" if v.get("hand_accuracy") is None else f"{v['hand_accuracy']:.0%}"
        rows.append(f"| {name} | {v['val_loss']:.4f} | {v['psnr']:.2f} | {v['ssim']:.3f} | {hand} |")
    s = result.get("settings", {})
    where = f"{s.get('clips', '?')} held-out clips of `{s.get('data', '?')}`, seed {s.get('seed', '?')}"
    return "## Evaluation\n\n" + "\n".join(rows) + f"\n\nMeasured with `python -m trainer evaluate` on {where}."


def usage_markdown(card: dict, adapter_ref: str) -> str:
    if card["base_model"] == TINY_MODEL:
        return _tiny_usage(card, adapter_ref)
    return _hub_usage(card, adapter_ref)


def _frame_args(card: dict) -> str:
    cfg = card.get("config", {})
    size = RECIPE_SIZE._replace(**{k: cfg[k] for k in RECIPE_SIZE._fields if k in cfg})
    return f"height={size.height}, width={size.width}, num_frames={size.num_frames}"


def _hub_usage(card: dict, adapter_ref: str) -> str:
    revision = f'revision="{card["revision"]}", ' if card.get("revision") else ""
    return f"""## Use with diffusers

The pipeline refuses to run without a safety checker: `pip install cosmos_guardrail` (NVIDIA's guardrail) and
`from_pretrained` builds it. The base model is gated: accept its license on the Hub and set `HF_TOKEN`.

{CODE_START}import torch
from diffusers import Cosmos2_5_PredictBasePipeline
from diffusers.utils import export_to_video, load_image

pipe = Cosmos2_5_PredictBasePipeline.from_pretrained(
    "{card["base_model"]}", {revision}dtype=torch.bfloat16
).to("cuda")
pipe.load_lora_weights("{adapter_ref}", adapter_name="adapter")
first_frame = load_image("first_frame.png")  # your robot's first frame
video = pipe(image=first_frame, prompt="The robot arm picks up the cup.", {_frame_args(card)}).frames[0]
export_to_video(video, "adapter.mp4", fps=16)
```

Without NVIDIA's guardrail, pass an object with `to()` and `check_text_safety(prompt) -> bool` as
`safety_checker=`; running NVIDIA's model without its guardrail is your decision under its license:

{CODE_START}class NoGuardrail:
    def to(self, *args, **kwargs):
        return self

    def check_text_safety(self, prompt):
        return True

pipe = Cosmos2_5_PredictBasePipeline.from_pretrained(
    "{card["base_model"]}", {revision}dtype=torch.bfloat16, safety_checker=NoGuardrail()
).to("cuda")
```"""


def _tiny_usage(card: dict, adapter_ref: str) -> str:
    return f"""## Use with diffusers

The base is Cosmos LoRA Studio's embedded tiny model (the real architecture, tiny sizes), loaded from its folder
in a clone of the project: run this from the clone's root. It is not NVIDIA's model, so the safety checker is an
explicit stand-in (the pipeline refuses to run without one). It runs on a CPU in seconds.

{CODE_START}import numpy as np
import torch
from diffusers import Cosmos2_5_PredictBasePipeline
from diffusers.utils import export_to_video
from PIL import Image


class NoGuardrail:  # the stand-in safety checker: the tiny model is not NVIDIA's
    def to(self, *args, **kwargs):
        return self

    def check_text_safety(self, prompt):
        return True


pipe = Cosmos2_5_PredictBasePipeline.from_pretrained(
    "{TINY_BASE_PATH}", dtype=torch.float32, safety_checker=NoGuardrail()
)
pipe.load_lora_weights("{adapter_ref}", adapter_name="adapter")
first_frame = Image.fromarray(np.full((64, 64, 3), 40, np.uint8))  # or Image.open("first_frame.png")
# A one-frame video conditions exactly like image= (one latent frame).
video = pipe(video=[first_frame], num_latent_conditional_frames=1, prompt="The left arm picks up the red block.",
             {_frame_args(card)}, num_inference_steps=12, guidance_scale=1.0,
             generator=torch.Generator().manual_seed(0)).frames[0]
export_to_video(video, "adapter.mp4", fps=8)
```"""


def code_blocks(markdown: str) -> list[str]:
    """The python code blocks of a README, in order (the tests run them)."""
    out, rest = [], markdown
    while CODE_START in rest:
        rest = rest.split(CODE_START, 1)[1]
        block, rest = rest.split("```", 1)
        out.append(block)
    return out
