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
from PIL import Image, ImageDraw

from trainer import cosmos
from trainer.run_folder import COMPARE_RECORD_FILE, COMPARE_VIDEO_FILE, WEIGHTS_FILE, card_summary, read_card
from trainer.video import probe_video, read_frames, write_video

BASE = "base"
Progress = Callable[[str, int, int], None]  # (variant, denoising step done, steps)


@dataclass
class AdapterChoice:
    path: str
    scale: float = 1.0

    @property
    def name(self) -> str:
        folder = Path(self.path)
        label = folder.parent.name if folder.name == "adapter" else folder.name  # runs/<name>/adapter -> <name>
        return re.sub(r"[^A-Za-z0-9_.-]", "_", label) or "adapter"


@dataclass
class GenerateRequest:
    prompt: str
    out_dir: str
    image: str = ""  # a still image, or a video file to take the first frame from
    video: str = ""  # a clip whose last 5 frames condition (2 latent frames)
    adapters: list[AdapterChoice] = field(default_factory=list)
    negative_prompt: str = ""
    seed: int = 0
    steps: int = 36
    guidance: float = 7.0
    height: int = 704
    width: int = 1280
    num_frames: int = 93
    fps: int = 16

    def problems(self) -> list[str]:
        p = []
        if bool(self.image) == bool(self.video):
            p.append("give exactly one of --image (first frame) or --video (initial clip)")
        for name in ("image", "video"):
            if getattr(self, name) and not Path(getattr(self, name)).is_file():
                p.append(f"{name}: {getattr(self, name)} does not exist")
        if not self.prompt.strip():
            p.append("prompt: must not be empty")
        if self.height % 16 or self.width % 16 or self.height < 16 or self.width < 16:
            p.append(f"height/width: must be positive multiples of 16 (got {self.height}x{self.width})")
        if self.num_frames < 9 or (self.num_frames - 1) % 4:
            p.append(f"num_frames: must be 4k+1 and at least 9 (got {self.num_frames})")
        if self.steps < 1:
            p.append(f"steps: must be at least 1 (got {self.steps})")
        for a in self.adapters:
            if not (Path(a.path) / WEIGHTS_FILE).is_file():
                p.append(f"adapter: {a.path} has no {WEIGHTS_FILE}")
        names = [a.name for a in self.adapters]
        if len(set(names)) != len(names) or BASE in names:
            p.append(f"adapter: names must be distinct and not {BASE!r} (got {names})")
        return p


@dataclass
class Rendered:
    cond_latent_frames: int
    frames: dict[str, np.ndarray] = field(default_factory=dict)
    records: list[dict] = field(default_factory=list)


class Renderer:
    def __init__(self, model: str, revision: str | None = None, guardrail: bool = True, device: str | None = None):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        self.pipe = cosmos.load_pipeline(model, revision, dtype=dtype, guardrail=guardrail).to(self.device)
        self.identity = cosmos.model_identity(model, revision, self.pipe.config._name_or_path)
        self.model, self.revision = model, self.identity["revision"]
        self.loaded: dict[str, str] = {}  # adapter name -> weights digest, to reload a retrained folder

    def render(self, request: GenerateRequest, progress: Progress | None = None) -> dict:
        """Render every variant and write the mp4s and compare.json; returns the compare.json record."""
        out = Path(request.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        rendered = self.render_frames(request, progress)
        for name, frames in rendered.frames.items():
            write_video(out / f"{name}.mp4", frames, request.fps)
        write_video(out / COMPARE_VIDEO_FILE, side_by_side(list(rendered.frames.items())), request.fps)
        record = {
            "model": self.model, "revision": self.revision, "commit": self.identity["commit"], "prompt": request.prompt,
            "negative_prompt": request.negative_prompt, "seed": request.seed, "steps": request.steps,
            "guidance": request.guidance, "height": request.height, "width": request.width,
            "num_frames": request.num_frames, "fps": request.fps, "image": request.image, "video": request.video,
            "conditional_latent_frames": rendered.cond_latent_frames, "device": str(self.device),
            "variants": rendered.records, "compare": COMPARE_VIDEO_FILE,
        }  # fmt: skip
        (out / COMPARE_RECORD_FILE).write_text(json.dumps(record, indent=2))
        return record

    def render_frames(self, request: GenerateRequest, progress: Progress | None = None) -> Rendered:
        """Every variant's frames (uint8 [F,H,W,3]) from the same initial noise, without writing files."""
        problems = request.problems()
        if problems:
            raise ValueError("; ".join(problems))
        condition, cond_latent_frames = _conditioning(request)
        variants = [(BASE, None)] + [(a.name, a) for a in request.adapters]
        for _, choice in variants[1:]:
            self._ensure_loaded(choice)
        rendered = Rendered(cond_latent_frames=cond_latent_frames)
        for name, choice in variants:
            t0 = time.perf_counter()
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
        if self.loaded:
            if choice is None:
                pipe.disable_lora()  # not set_adapters(..., 0): that is not the base model for DoRA
            else:
                pipe.enable_lora()
                pipe.set_adapters([choice.name], [choice.scale])

        def on_step(_pipe, i, _t, kwargs):
            if progress:
                progress(name, i + 1, request.steps)
            return kwargs

        output = pipe(
            video=condition, prompt=request.prompt, negative_prompt=request.negative_prompt or None,
            height=request.height, width=request.width, num_frames=request.num_frames,
            num_inference_steps=request.steps, guidance_scale=request.guidance,
            num_latent_conditional_frames=cond_latent_frames, output_type="np",
            generator=torch.Generator(self.device).manual_seed(request.seed),  # same initial noise for all
            callback_on_step_end=on_step,
        )  # fmt: skip
        return (np.clip(output.frames[0], 0, 1) * 255).round().astype(np.uint8)


def _conditioning(request: GenerateRequest) -> tuple[list[Image.Image], int]:
    """An image conditions through one latent frame (same output as the pipeline's image= path, measured; it
    avoids torchvision); a clip through two latent frames, its last 5 frames."""
    if request.video:
        info = probe_video(request.video)
        if info.frames < 5:
            raise ValueError(f"video: {request.video} has {info.frames} frames; an initial clip needs at least 5")
        return [Image.fromarray(f) for f in read_frames(request.video)], 2
    path = Path(request.image)
    if path.suffix.lower() in {".mp4", ".mov", ".webm", ".avi", ".mkv"}:
        return [Image.fromarray(read_frames(path, 0, 1)[0])], 1
    try:
        return [Image.open(path).convert("RGB")], 1
    except OSError:
        raise ValueError(f"image: {path} is not an image file Pillow can read (png, jpg, webp ...)") from None


def weights_digest(adapter_dir: str | Path) -> str:
    return hashlib.sha256((Path(adapter_dir) / WEIGHTS_FILE).read_bytes()).hexdigest()[:16]


def _variant_record(name: str, choice: AdapterChoice | None, digest: str | None, seconds: float) -> dict:
    record = {"name": name, "file": f"{name}.mp4", "seconds": round(seconds, 3)}
    if choice is not None:
        record.update(asdict(choice), adapter_id=digest, card=card_summary(read_card(Path(choice.path))))
    return record


def side_by_side(videos: list[tuple[str, np.ndarray]], label_height: int = 14) -> np.ndarray:
    """Frames of every variant in one row, each under its name."""
    strips = []
    for name, frames in videos:
        f, h, w, _ = frames.shape
        label = Image.new("RGB", (w, label_height), (20, 20, 20))
        ImageDraw.Draw(label).text((2, 1), name[: max(w // 6, 1)], fill=(255, 255, 255))
        header = np.broadcast_to(np.asarray(label)[None], (f, label_height, w, 3))
        strips.append(np.concatenate([header, frames], axis=1))
    row = np.concatenate(strips, axis=2)
    pad_h, pad_w = (-row.shape[1]) % 2, (-row.shape[2]) % 2  # H.264 wants even sizes
    return np.pad(row, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)))
