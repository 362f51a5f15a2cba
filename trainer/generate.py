"""Render the base model and any number of adapters from the same first frame(s), prompt and initial noise.

`Renderer` keeps one pipeline loaded and its adapters attached between requests (the studio's generation
worker reuses it); `render` writes `base.mp4`, one mp4 per adapter, a labelled side-by-side `compare.mp4` and
`compare.json`, the record of every input.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from trainer import cosmos, memory_modes
from trainer.dora_inference import frozen_dora_norms
from trainer.precision import resolve as resolve_precision
from trainer.spec.bounds import long_text_problem
from trainer.spec.config import Problem
from trainer.spec.generate_settings import GenerateSettings
from trainer.spec.run_folder import (
    ADAPTER_DIR,
    CHECKPOINT_LABEL,
    CHECKPOINTS_DIR,
    COMPARE_RECORD_FILE,
    COMPARE_VIDEO_FILE,
    WEIGHTS_FILE,
    card_summary,
    folder_step,
    read_card,
)
from trainer.spec.video_shape import condition_frames
from trainer.video import VideoError, probe_video, read_frames, write_video

BASE = "base"
PRECISION_NAMES = {torch.bfloat16: "bf16", torch.float32: "fp32"}
Progress = Callable[[str, int, int], None]  # (variant, denoising step done, steps)
FONT_SIZE, LINE_HEIGHT, TEXT_MARGIN = 10, 12, 2  # compare.mp4's labels, in pixels: legible on a 64 px tile


@dataclass
class AdapterChoice:
    path: str
    scale: float = 1.0

    @property
    def name(self) -> str:
        return variant_name(self.path)


def variant_name(path: str | Path) -> str:
    """The label of an adapter folder: runs/<run>/adapter -> <run>, runs/<run>/checkpoints/step-N -> <run>@step-N
    (CHECKPOINT_LABEL), any other folder -> its name. Also its file name (<label>.mp4) and peft adapter name."""
    folder = Path(path)
    if folder.name == ADAPTER_DIR:
        label = folder.parent.name
    elif folder.parent.name == CHECKPOINTS_DIR and folder_step(folder) is not None:
        label = CHECKPOINT_LABEL.format(run=folder.parent.parent.name, checkpoint=folder.name)
    else:
        label = folder.name
    return re.sub(r"[^A-Za-z0-9_.@-]", "_", label) or "adapter"


@dataclass(kw_only=True)
class GenerateRequest(GenerateSettings):
    """What to render (prompt, conditioning, adapters, output folder) with its generation settings."""

    prompt: str
    out_dir: str
    image: str = ""  # a still image, or a video file to take the first frame from (1 conditional latent frame)
    video: str = ""  # a video whose first clip (its first 5 frames, 2 latent frames) conditions
    adapters: list[AdapterChoice] = field(default_factory=list)

    @property
    def conditional_latent_frames(self) -> int:
        return 2 if self.video else 1

    def problems(self) -> list[Problem]:
        p = []
        if bool(self.image) == bool(self.video):
            p.append(Problem("image/video", "give exactly one, an image (first frame) or a video (first clip)"))
        for name in ("image", "video"):
            if getattr(self, name) and not Path(getattr(self, name)).is_file():
                p.append(Problem(name, f"{getattr(self, name)} does not exist"))
        if self.video and Path(self.video).is_file():
            p += _clip_problems(self.video)
        if not self.prompt.strip():
            p.append(Problem("prompt", "must not be empty"))
        if long_text_problem(self.prompt):
            p.append(Problem("prompt", long_text_problem(self.prompt)))
        return p + super().problems(self.conditional_latent_frames) + adapter_problems(self.adapters)


def _clip_problems(video: str) -> list[Problem]:
    count = condition_frames(2)
    try:
        frames = probe_video(video).frames
    except VideoError as exc:
        return [Problem("video", str(exc))]
    if frames >= count:
        return []
    return [
        Problem(
            "video",
            f"{video} has {frames} frame{'s' if frames != 1 else ''} but its first clip must hold "
            f"{count} (2 latent frames); use a longer video or condition on an image",
        )
    ]


def adapter_problems(adapters: list[AdapterChoice]) -> list[Problem]:
    """Adapters that cannot be rendered side by side: missing weights, or names that collide."""
    from trainer.checkpoints import ADAPTER_FILE
    from trainer.spec.bounds import strength_problem

    p = [
        Problem(
            "adapter",
            f"{a.path} has no {WEIGHTS_FILE}"
            + (
                ": it is a checkpoint saved before checkpoints held a loadable adapter (it can only resume its run); "
                "use the run's adapter folder or a newer checkpoint"
                if (Path(a.path) / ADAPTER_FILE).is_file()
                else ""
            ),
        )
        for a in adapters
        if not (Path(a.path) / WEIGHTS_FILE).is_file()
    ]
    p += [
        Problem("adapter", f"the strength of {a.name} {strength_problem(a.scale)}")
        for a in adapters
        if strength_problem(a.scale)
    ]
    names = [a.name for a in adapters]
    if len(set(names)) != len(names) or BASE in names:
        p.append(Problem("adapter", f"names must be distinct and not {BASE!r} (got {names})"))
    return p


@dataclass
class Rendered:
    cond_latent_frames: int
    frames: dict[str, np.ndarray] = field(default_factory=dict)
    records: list[dict] = field(default_factory=list)


class Renderer:
    """One loaded pipeline, in bf16 where the device computes it natively unless `precision` says fp32."""

    def __init__(
        self,
        model: str,
        revision: str | None = None,
        guardrail: bool = True,
        device: str | None = None,
        precision: str = "auto",
    ):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = resolve_precision(precision, self.device)
        # On the CPU until `prepare` places it by the memory mode of what is rendered (trainer.memory_modes).
        self.pipe = cosmos.load_pipeline(model, revision, dtype=self.dtype, guardrail=guardrail)
        self.memory_mode: str | None = None
        self.identity = cosmos.model_identity(model, revision, self.pipe.config._name_or_path)
        self.model, self.revision = model, self.identity["revision"]
        self.loaded: dict[str, str] = {}  # adapter name -> weights digest, to reload a retrained folder

    def prepare(self, settings: GenerateSettings) -> str:
        """Places the pipeline by the memory mode `settings` resolve to (full or offload); returns the mode."""
        mode = memory_modes.resolve(settings, self.device)
        if mode != self.memory_mode:
            memory_modes.apply(self.pipe, mode, self.device)
            self.memory_mode = mode
        return mode

    def render(self, request: GenerateRequest, progress: Progress | None = None) -> dict:
        """Render every variant and write the mp4s and compare.json; returns the compare.json record."""
        return self.write_comparison(request, self.render_frames(request, progress))

    def write_comparison(self, request: GenerateRequest, rendered: Rendered) -> dict:
        """Write rendered variants into request.out_dir: the mp4s, compare.mp4 and compare.json (returned)."""
        out = Path(request.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for name, frames in rendered.frames.items():
            write_video(out / f"{name}.mp4", frames, request.fps)
        labels = [variant_label(r) for r in rendered.records]  # records and frames are in variant order
        compare = side_by_side(list(zip(labels, rendered.frames.values())), caption=request.prompt)
        write_video(out / COMPARE_VIDEO_FILE, compare, request.fps)
        record = {
            "model": self.model,
            "revision": self.revision,
            "commit": self.identity["commit"],
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt,
            "seed": request.seed,
            "steps": request.steps,
            "guidance": request.guidance,
            "height": request.height,
            "width": request.width,
            "num_frames": request.num_frames,
            "fps": request.fps,
            "image": request.image,
            "video": request.video,
            "conditional_latent_frames": rendered.cond_latent_frames,
            "device": str(self.device),
            "precision": PRECISION_NAMES[self.dtype],
            "memory": self.memory_mode,
            "variants": rendered.records,
            "compare": COMPARE_VIDEO_FILE,
        }
        (out / COMPARE_RECORD_FILE).write_text(json.dumps(record, indent=2))
        return record

    def render_frames(self, request: GenerateRequest, progress: Progress | None = None) -> Rendered:
        """Every variant's frames (uint8 [F,H,W,3]) from the same initial noise, without writing files."""
        problems = request.problems()
        if problems:
            raise ValueError("; ".join(map(str, problems)))
        condition, cond_latent_frames = _conditioning(request)
        self.prepare(request)
        variants = [(BASE, None)] + [(a.name, a) for a in request.adapters]
        for _, choice in variants[1:]:
            self._ensure_loaded(choice)
        rendered = Rendered(cond_latent_frames=cond_latent_frames)
        for name, choice in variants:
            t0 = time.perf_counter()
            with frozen_dora_norms(self.pipe.transformer):  # DoRA: one weight norm per layer for the whole render
                rendered.frames[name] = self._render_one(request, condition, cond_latent_frames, name, choice, progress)
            rendered.records.append(_variant_record(name, choice, self.loaded.get(name), time.perf_counter() - t0))
        return rendered

    def _ensure_loaded(self, choice: AdapterChoice) -> None:
        digest = weights_digest(choice.path)
        if self.loaded.get(choice.name) == digest:
            return
        if choice.name in self.loaded:
            self.pipe.delete_adapters(choice.name)
        self.pipe.load_lora_weights(choice.path, adapter_name=choice.name)
        self.loaded[choice.name] = digest

    def _render_one(self, request, condition, cond_latent_frames, name, choice, progress) -> np.ndarray:
        pipe = self.pipe
        use_variant(pipe, choice, bool(self.loaded))

        def on_step(_pipe, i, _t, kwargs):
            if progress:
                progress(name, i + 1, request.steps)
            return kwargs

        output = pipe(
            video=condition,
            prompt=request.prompt,
            negative_prompt=request.negative_prompt or None,
            height=request.height,
            width=request.width,
            num_frames=request.num_frames,
            num_inference_steps=request.steps,
            guidance_scale=request.guidance,
            num_latent_conditional_frames=cond_latent_frames,
            output_type="np",
            generator=torch.Generator(self.device).manual_seed(request.seed),  # same initial noise for all
            callback_on_step_end=on_step,
        )
        return (np.clip(output.frames[0], 0, 1) * 255).round().astype(np.uint8)


def _conditioning(request: GenerateRequest) -> tuple[list[Image.Image], int]:
    """An image conditions through one latent frame (same output as the pipeline's image= path, measured; it
    avoids torchvision); a video through two, its first clip of 5 frames (the pipeline keeps the last 5 frames
    it is given, so it gets exactly these)."""
    if request.video:  # at least 5 frames long: GenerateRequest.problems checked it
        return [Image.fromarray(f) for f in read_frames(request.video, 0, condition_frames(2))], 2
    path = Path(request.image)
    if path.suffix.lower() in {".mp4", ".mov", ".webm", ".avi", ".mkv"}:
        return [Image.fromarray(read_frames(path, 0, 1)[0])], 1
    try:
        return [Image.open(path).convert("RGB")], 1
    except OSError:
        raise ValueError(f"image: {path} is not an image file Pillow can read (png, jpg, webp ...)") from None


def use_variant(pipe, choice: AdapterChoice | None, any_loaded: bool) -> None:
    """Make the pipeline's transformer the base model (choice None) or one loaded adapter at its scale."""
    if not any_loaded:
        return
    if choice is None:
        pipe.disable_lora()  # not set_adapters(..., 0): that is not the base model for DoRA
    else:
        pipe.enable_lora()
        pipe.set_adapters([choice.name], [choice.scale])


def weights_digest(adapter_dir: str | Path) -> str:
    return hashlib.sha256((Path(adapter_dir) / WEIGHTS_FILE).read_bytes()).hexdigest()[:16]


def _variant_record(name: str, choice: AdapterChoice | None, digest: str | None, seconds: float) -> dict:
    record = {"name": name, "file": f"{name}.mp4", "seconds": round(seconds, 3)}
    if choice is not None:
        record.update(asdict(choice), adapter_id=digest, card=card_summary(read_card(Path(choice.path))))
    return record


def variant_label(record: dict) -> str:
    """A variant's name as compare.mp4 shows it: adapters with their strength."""
    return record["name"] if record.get("scale") is None else f"{record['name']} (strength {record['scale']:g})"


def wrap_text(text: str, width: int, font: ImageFont.ImageFont) -> list[str]:
    """`text` as lines no wider than `width` pixels, broken at spaces (inside a word only when the word alone is
    too wide); nothing is cut, so the lines joined give the text back."""
    lines: list[str] = []
    for word in text.split():
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and font.getlength(candidate) <= width:
            lines[-1] = candidate
            continue
        lines.append("")
        for char in word:
            if lines[-1] and font.getlength(lines[-1] + char) > width:
                lines.append("")
            lines[-1] += char
    return lines or [""]


def _text_rows(lines: list[str], width: int, font: ImageFont.ImageFont, rows: int) -> np.ndarray:
    """`rows` lines of white text on dark grey, `width` pixels wide: uint8 [rows * LINE_HEIGHT, width, 3]."""
    image = Image.new("RGB", (width, rows * LINE_HEIGHT + 2), (20, 20, 20))
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((TEXT_MARGIN, 1 + i * LINE_HEIGHT), line, fill=(255, 255, 255), font=font)
    return np.asarray(image)


def side_by_side(videos: list[tuple[str, np.ndarray]], caption: str = "") -> np.ndarray:
    """Frames of every variant in one row, each under its full label (wrapped to its width), under the caption
    (wrapped to the whole row)."""
    font = ImageFont.load_default(size=FONT_SIZE)
    wrapped = [wrap_text(label, frames.shape[2] - 2 * TEXT_MARGIN, font) for label, frames in videos]
    rows = max(len(lines) for lines in wrapped)
    strips = []
    for lines, (_, frames) in zip(wrapped, videos):
        header = _text_rows(lines, frames.shape[2], font, rows)
        strips.append(np.concatenate([np.broadcast_to(header[None], (len(frames), *header.shape)), frames], axis=1))
    row = np.concatenate(strips, axis=2)
    if caption:
        lines = wrap_text(caption, row.shape[2] - 2 * TEXT_MARGIN, font)
        top = _text_rows(lines, row.shape[2], font, len(lines))
        row = np.concatenate([np.broadcast_to(top[None], (len(row), *top.shape)), row], axis=1)
    pad_h, pad_w = (-row.shape[1]) % 2, (-row.shape[2]) % 2  # H.264 wants even sizes
    return np.pad(row, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)))
