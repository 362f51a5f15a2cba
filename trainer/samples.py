"""Sample videos during training: the same first frames and prompts, rendered at fixed noise with the adapter of
the step, so the strip of samples shows what training changes (step 0 is the base, before training).

Rendered by the main process with the pipeline already loaded for training (no second copy of the model): the
transformer goes to eval mode for the render and back, and the RNG states are restored, so a run with samples
trains exactly as one without (a test checks the losses are equal). The prompts are embedded once, before the
run may drop its text encoder (`cache: auto` trains from the latent cache without it: the 2B text encoder is
16.6 GB); the VAE, small, is loaded again if the run dropped it. Other processes wait at a barrier meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from trainer import cosmos, memory_modes
from trainer.cache import PromptTail
from trainer.datasets import list_items
from trainer.dora_inference import frozen_dora_norms
from trainer.spec.config import TrainConfig
from trainer.spec.embedded import resolve_data
from trainer.spec.generate_settings import GenerateSettings, preset_for, preset_values
from trainer.spec.run_folder import SAMPLE_RECORD_FILE, sample_dir, sample_video_name, write_json_atomic
from trainer.video import read_frames, write_video

log = logging.getLogger("trainer")
DEFAULT_SAMPLES = 2  # clips taken when sample_prompts is empty
HELD_OUT_FOLDERS = ("held_out", "validation", "val")  # beside the data folder, in this order of preference
VIDEO_SUFFIXES = {".mp4", ".mov", ".webm", ".avi", ".mkv"}


@dataclass(frozen=True)
class SamplePrompt:
    image: str  # an image, or a video whose first frame conditions
    prompt: str


def sample_prompts(cfg: TrainConfig) -> list[SamplePrompt]:
    """The config's sample_prompts, else the first clips of a held-out folder beside the data, else of the data;
    ValueError (naming the field) for a first frame that does not exist."""
    if cfg.sample_prompts:
        chosen = [SamplePrompt(p["image"], p["prompt"]) for p in cfg.sample_prompts]
        missing = [p.image for p in chosen if not Path(p.image).expanduser().is_file()]
        if missing:
            raise ValueError(
                f"sample_prompts: the first frame {missing[0]} does not exist; give an image or video "
                "file that does, or leave sample_prompts empty to use held-out clips."
            )
        for sample in chosen:
            _check_image(sample.image)
        return chosen
    data = resolve_data(cfg.data)
    folders = [data.parent / name for name in HELD_OUT_FOLDERS if data.parent / name != data] + [data]
    for folder in folders:
        if not folder.is_dir():
            continue
        items = [i for i in list_items(folder, cfg.caption_variant, cfg.prompt_prefix) if i.caption]
        if items:
            return [SamplePrompt(str(i.video), i.caption) for i in items[:DEFAULT_SAMPLES]]
    raise ValueError(
        f"sample_every: {cfg.data} has no captioned clip to take sample prompts from; set "
        "sample_prompts or sample_every: 0."
    )


def _check_image(path: str) -> None:
    """An image first frame must be readable and of a sane size: found now, not at the first sample step."""
    if Path(path).suffix.lower() in VIDEO_SUFFIXES:
        return
    try:
        with Image.open(Path(path).expanduser()) as image:
            pixels = image.width * image.height
    except (OSError, Image.DecompressionBombError):
        pixels = None
    if pixels is None or pixels > Image.MAX_IMAGE_PIXELS:
        raise ValueError(
            f"sample_prompts: the first frame {path} is not an image of at most "
            f"{Image.MAX_IMAGE_PIXELS:,} pixels; give a PNG or JPEG frame (it is resized to the run's "
            "clip size)."
        )


def sample_settings(cfg: TrainConfig) -> GenerateSettings:
    """The model's generation preset (its steps and guidance) at the training clip size: samples look like the
    data the run learns from, at the cost of one preset generation each."""
    values = preset_values(preset_for(cfg.model), cfg.model)
    values.update(
        revision=cfg.revision,
        height=cfg.height,
        width=cfg.width,
        num_frames=cfg.num_frames,
        guardrail=False,
        seed=cfg.seed,
    )
    return GenerateSettings(**values)


def first_frame(path: str) -> Image.Image:
    """The conditioning frame of a sample, as `generate` reads an image argument."""
    path = Path(path).expanduser()
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return Image.fromarray(read_frames(path, 0, 1)[0])
    return Image.open(path).convert("RGB")


class Sampler:
    """Renders the samples of one run at the steps `due` says; `render` is called by every process."""

    def __init__(self, cfg: TrainConfig, pipe, accelerator, prompts: list[SamplePrompt]):
        self.cfg, self.pipe, self.accelerator, self.prompts = cfg, pipe, accelerator, prompts
        self.settings = sample_settings(cfg)
        self.embeds: list[torch.Tensor] = []  # raw prompt embeddings on the CPU, main process only
        self.negative: torch.Tensor | None = None
        self._projected: dict[int, torch.Tensor] = {}

    @classmethod
    def prepare(cls, cfg: TrainConfig, pipe, accelerator, prompts: list[SamplePrompt]) -> Sampler | None:
        """None when sample_every is 0; otherwise the sampler with `prompts` (`sample_prompts(cfg)`) embedded
        (main process). Call it before the latent cache is built: a text encoder loaded here is dropped with the
        others after it."""
        if not cfg.sample_every:
            return None
        sampler = cls(cfg, pipe, accelerator, prompts)
        if accelerator.is_main_process:
            sampler._embed_prompts()
        accelerator.wait_for_everyone()
        return sampler

    def _embed_prompts(self) -> None:
        t0, pipe, device = time.perf_counter(), self.pipe, self.accelerator.device
        cosmos.load_encoders(pipe, ("text_encoder",), "to embed the sample prompts")  # no-op when loaded
        encoder = pipe.text_encoder
        before = encoder.device
        encoder.to(device)
        self.embeds = [cosmos.encode_prompts(pipe, [p.prompt], device).cpu() for p in self.prompts]
        if self.settings.guidance > 1:
            self.negative = cosmos.encode_prompts(pipe, [self.settings.negative_prompt], device).cpu()
        encoder.to(before)
        log.info("samples: %d prompts embedded in %.1f s", len(self.prompts), time.perf_counter() - t0)

    def due(self, step: int, total: int) -> bool:
        return step == 0 or step == total or step % self.cfg.sample_every == 0

    def render(self, step: int, events) -> None:
        """Render every sample with the current adapter into samples/step-N/ and emit a `sample` event (main
        process); the others wait."""
        if self.accelerator.is_main_process:
            t0 = time.perf_counter()
            folder = sample_dir(self.cfg.run_dir, step)
            folder.mkdir(parents=True, exist_ok=True)
            records = []
            with _kept_rng(self.accelerator.device), _eval_mode(self.pipe.transformer), self._vae_on_device():
                for index, sample in enumerate(self.prompts):
                    frames = self._render_one(index)
                    write_video(folder / sample_video_name(index), frames, self.settings.fps)
                    records.append(
                        {
                            "video": sample_video_name(index),
                            "prompt": sample.prompt,
                            "image": sample.image,
                            "seed": self.settings.seed + index,
                        }
                    )
            write_json_atomic(
                folder / SAMPLE_RECORD_FILE, {"step": step, "settings": vars(self.settings), "samples": records}
            )
            seconds = round(time.perf_counter() - t0, 3)
            events.emit(
                "sample",
                step=step,
                path=str(folder),
                videos=[r["video"] for r in records],
                prompts=[r["prompt"] for r in records],
                seconds=seconds,
            )
            log.info("samples of step %d in %s (%.1f s)", step, folder, seconds)
        self.accelerator.wait_for_everyone()

    @torch.no_grad()
    def _render_one(self, index: int) -> np.ndarray:
        s, pipe, device = self.settings, self.pipe, self.accelerator.device
        negative = self._prompt_embeds(self.negative) if self.negative is not None else None
        with self.accelerator.autocast(), frozen_dora_norms(pipe.transformer):
            output = pipe(
                video=[first_frame(self.prompts[index].image)],
                prompt_embeds=self._prompt_embeds(self.embeds[index]),
                negative_prompt_embeds=negative,
                height=s.height,
                width=s.width,
                num_frames=s.num_frames,
                num_inference_steps=s.steps,
                guidance_scale=s.guidance,
                num_latent_conditional_frames=1,
                output_type="np",
                generator=torch.Generator(device).manual_seed(s.seed + index),
            )
        return (np.clip(output.frames[0], 0, 1) * 255).round().astype(np.uint8)

    def _prompt_embeds(self, raw: torch.Tensor) -> torch.Tensor:
        """Embeddings as the transformer takes them now: projected once when training from a projected latent
        cache (its `crossattn_proj` is a PromptTail that expects W e, as trainer.cache stores prompts)."""
        device, dtype = self.accelerator.device, self.pipe.transformer.dtype
        tail = self.pipe.transformer.crossattn_proj
        if not isinstance(tail, PromptTail):
            return raw.to(device, dtype)
        if id(raw) not in self._projected:  # on the device: the 2B projection is 100352 wide, slow on a CPU
            weight = tail._full[0][0].weight.to(device)
            self._projected[id(raw)] = F.linear(raw.to(device, weight.dtype), weight).cpu()
            del weight
        return self._projected[id(raw)].to(device, dtype)

    @contextlib.contextmanager
    def _vae_on_device(self):
        """The real VAE on the training device for the render (loaded when the run dropped it), then back. A
        weightless text encoder (the prompts are embedded already) is out of the pipeline meanwhile: on a CPU the
        pipeline takes its first component's device as the one to compute on, and that would be `meta`."""
        pipe = self.pipe
        cosmos.load_encoders(pipe, ("vae",), "to render samples")
        before = pipe.vae.device
        pipe.vae.to(self.accelerator.device)
        placeholder = pipe.text_encoder if pipe.text_encoder.device.type == "meta" else None
        if placeholder is not None:
            pipe.register_modules(text_encoder=None)
        # The transformer trains on the GPU and the prompts are embedded already: of generation's offload mode
        # only the tiled, sliced decode applies, where a full generation would not fit (trainer.memory_modes).
        tiled = memory_modes.resolve(self.settings, self.accelerator.device) == "offload"
        if tiled:
            pipe.vae.enable_tiling()
            pipe.vae.enable_slicing()
        try:
            yield
        finally:
            if tiled:
                pipe.vae.disable_tiling()
                pipe.vae.disable_slicing()
            pipe.vae.to(before)
            if placeholder is not None:
                pipe.register_modules(text_encoder=placeholder)


@contextlib.contextmanager
def _eval_mode(module: torch.nn.Module):
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


@contextlib.contextmanager
def _kept_rng(device: torch.device):
    """Rendering draws noise from its own generator, but nothing it calls may move the global RNG streams the
    training step might use (dropout, a library's randn): they are put back as they were."""
    cpu = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    try:
        yield
    finally:
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state(cuda, device)
