"""Describing clips with a Qwen2.5-VL-family model through transformers: `python -m trainer caption` runs
`caption_dataset` with a `Captioner`.

The model is a Qwen2.5-VL (Cosmos-Reason1 is one), or a Cosmos Predict 2.5 pipeline whose text encoder is one
(its text_encoder/ and tokenizer/ are all that is downloaded). Each clip is shown as a few frames sampled evenly
across it, the first frame always among them, given to the model as images in one message: transformers' video
processor needs torchvision, which this project does not install, and Qwen2.5-VL reads several images in order.
Weights are loaded in bf16 where the device computes it natively (a GPU), fp32 elsewhere (trainer.precision).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from trainer import precision
from trainer.caption_files import (
    MAX_NEW_TOKENS,
    TINY_IS_NOISE,
    CaptionError,
    Plan,
    caption_record,
    instruction,
    local_model_problem,
    record_captions,
    write_caption,
)
from trainer.cosmos import download_snapshot, snapshot_commit
from trainer.spec.config import resolve_revision
from trainer.spec.embedded import TINY_MODEL
from trainer.video import VideoError, probe_video, read_frames

# Each frame is resized to at most this many pixels (Qwen2.5-VL spends one token per 28x28 patch): 8 frames of
# 448x448 are about 2,000 tokens, enough to see a gripper and an object.
MAX_PIXELS = 448 * 448
MIN_PIXELS = 56 * 56
PIPELINE_FILES = ["model_index.json", "text_encoder/*", "tokenizer/*"]
VLM_FILES = ["*.json", "*.safetensors", "*.jinja", "*.txt", "*.model"]
# Qwen2.5-VL's chat format, written out: a pipeline's tokenizer folder may carry a text-only chat template.
CHAT = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\n{visual}{prompt}<|im_end|>\n<|im_start|>assistant\n"
)
IMAGE = "<|vision_start|>{pads}<|vision_end|>"
IMAGE_PAD = "<|image_pad|>"


@dataclass(frozen=True)
class ModelFiles:
    weights: Path  # the Qwen2.5-VL folder (a pipeline's text_encoder/)
    tokenizer: Path
    model: str  # as the user named it
    revision: str | None
    commit: str | None


def locate(model: str, revision: str | None) -> ModelFiles:
    """The folders to load from: a local folder as given, or a Hub snapshot of only what captioning reads.
    CaptionError for the tiny model or a folder that is not a Qwen2.5-VL; ModelError for a download."""
    if model == TINY_MODEL:
        raise CaptionError(TINY_IS_NOISE + ".")
    local = Path(model).expanduser()
    if local.exists():
        return _model_files(local, model, None, None)
    revision = resolve_revision(model, revision)
    head = download_snapshot(model, revision, ["model_index.json", "config.json"])
    folder = download_snapshot(model, revision, PIPELINE_FILES if (head / "model_index.json").is_file() else VLM_FILES)
    return _model_files(folder, model, revision or "main", snapshot_commit(folder))


def _model_files(folder: Path, model: str, revision: str | None, commit: str | None) -> ModelFiles:
    problem = local_model_problem(folder)
    if problem:
        raise CaptionError(problem + ".")
    if (folder / "model_index.json").is_file():  # a Cosmos pipeline: its text encoder is the Qwen2.5-VL
        return ModelFiles(folder / "text_encoder", folder / "tokenizer", model, revision, commit)
    return ModelFiles(folder, folder, model, revision, commit)


class Captioner:
    """A loaded Qwen2.5-VL that writes one caption for a list of frames and a prompt, greedily. A max_new_tokens
    in the model's own generation_config.json caps every caption (Qwen2.5-VL's sets none)."""

    def __init__(self, files: ModelFiles, precision_name: str = "auto"):
        from transformers import AutoTokenizer, Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessorPil

        self.files = files
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = precision.resolve(precision_name, self.device)
        self.model = Qwen2_5_VLForConditionalGeneration.from_pretrained(files.weights, dtype=self.dtype)
        self.model.to(self.device).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(files.tokenizer)
        sizes = {"min_pixels": MIN_PIXELS, "max_pixels": MAX_PIXELS}
        if (files.weights / "preprocessor_config.json").is_file():
            self.images = Qwen2VLImageProcessorPil.from_pretrained(files.weights, **sizes)
        else:  # a pipeline's text encoder has none; Qwen2.5-VL's defaults (patch 14, merge 2, CLIP mean/std)
            self.images = Qwen2VLImageProcessorPil(**sizes)

    def describe(self, frames: np.ndarray, prompt: str, max_new_tokens: int) -> str:
        vision = self.images(images=list(frames), return_tensors="pt")
        per_token = self.images.merge_size**2
        visual = "".join(IMAGE.format(pads=IMAGE_PAD * (int(g.prod()) // per_token)) for g in vision["image_grid_thw"])
        text = self.tokenizer([CHAT.format(visual=visual, prompt=prompt)], return_tensors="pt")
        inputs = {**text, **vision}
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        cap = self.model.generation_config.max_new_tokens or max_new_tokens
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=min(cap, max_new_tokens), do_sample=False)
        prompt_length = text["input_ids"].shape[1]
        return self.tokenizer.decode(out[0, prompt_length:], skip_special_tokens=True).strip()


def sample_frames(video: Path, count: int) -> np.ndarray:
    """`count` frames spread evenly from the first to the last (fewer when the clip is shorter), uint8 [F,H,W,3]."""
    total = probe_video(video).frames
    indices = sorted({int(i) for i in np.linspace(0, total - 1, min(count, total)).round()})
    return np.stack([read_frames(video, index, 1)[0] for index in indices])


def caption_dataset(
    work: Plan,
    captioner: Captioner,
    template: str,
    frames: int,
    out_dir: Path,
    on_progress: Callable[..., None],
    max_new_tokens: int | None = None,
) -> tuple[int, int]:
    """Caption every clip of `work.todo` in order, each file written whole before the next clip; provenance.json in
    `out_dir` records the run and grows with each clip. Returns (written, failed)."""
    files = captioner.files
    record = caption_record(files.model, files.revision, files.commit, template, work.variants, frames)
    started = time.monotonic()
    written = failed = 0
    for index, target in enumerate(work.todo):
        captions, problem = {}, None
        try:
            shown = sample_frames(target.video, frames)
        except VideoError as exc:
            problem = f"does not decode ({exc.reason})"
        else:
            for variant in work.variants:
                limit = max_new_tokens or MAX_NEW_TOKENS[variant]
                captions[variant] = captioner.describe(shown, instruction(template, variant), limit)
            empty = [v for v, text in captions.items() if not text]
            if empty:
                problem = f"the model wrote no {'/'.join(empty)} caption"
        if problem is None:
            write_caption(target.path, captions, work.format)
            record["clips"].append(target.key)
            record_captions(out_dir, record)
            written += 1
        else:
            failed += 1
        seconds = time.monotonic() - started
        on_progress(
            clip=index + 1,
            clips=len(work.todo),
            key=target.key,
            path=None if problem else target.path.relative_to(out_dir).as_posix(),
            captions=captions if problem is None else {},
            problem=problem,
            seconds=round(seconds, 1),
            eta=round(seconds / (index + 1) * (len(work.todo) - index - 1), 1),
        )
    return written, failed
