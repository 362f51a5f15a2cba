"""Score the base model and adapters on held-out clips: validation loss, and generated-vs-real clip error.

For every clip, two measurements per variant (the base model, then each adapter):
- `val_loss`: the training objective (`cosmos.flow_matching_loss`) at fixed noise and fixed noise levels, with
  the first latent frame as the condition and no prompt dropout. The noise levels are the medians of the four
  quartiles of the training distribution of sigma, so the number estimates the training loss without drawing.
- `psnr`, `ssim`: generate from the clip's first frame and caption (same initial noise for every variant), and
  compare the generated frames after the conditioning frame with the real ones.
- `hand_accuracy` (robot world only: when the captions name "the left arm" or "the right arm"): how often the
  arm that moves in the generated clip (`hand_scorer.which_hand_moved`) is the arm the caption names.

`reference` holds what no adapter changes: the real clip encoded and decoded by the VAE (what the VAE alone
loses: a practical ceiling for every variant, hand scorer included) and the first frame held still (what
"nothing moves" scores).
Everything is seeded: the same inputs give the same numbers.
"""

from __future__ import annotations

import re
import statistics
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from trainer import cosmos
from trainer.datasets import check_items, list_items
from trainer.dora_inference import frozen_dora_norms
from trainer.generate import BASE, AdapterChoice, GenerateRequest, Renderer, adapter_problems, use_variant
from trainer.spec.config import Problem
from trainer.spec.embedded import TINY_MODEL, resolve_data
from trainer.spec.generate_settings import GenerateSettings, preset_for, preset_values
from trainer.video import read_frames

# The 12.5, 37.5, 62.5 and 87.5 % quantiles of sigma = shift*t / (1 + (shift-1)*t), t = sigmoid(N(0, 1)),
# shift 5: the training distribution of noise levels (cosmos.draw_flow_batch) as a fixed four-point quadrature.
VAL_SIGMAS = (0.6128, 0.7843, 0.8730, 0.9405)
CONDITIONAL_LATENT_FRAMES = 1  # the clip's first frame conditions, for the loss and for generation alike
VAE_KEY = "real, via VAE"  # the real clip encoded and decoded: what the VAE alone loses
_HAND_IN_CAPTION = re.compile(r"\bthe (left|right) arm\b", re.IGNORECASE)


@dataclass(kw_only=True)
class EvalSettings(GenerateSettings):
    """What to score, with the generation settings it extends; `from_preset` gives a preset's settings (the
    tiny world's published scores use the `tiny` preset)."""

    data: str = "sample:held_out"
    adapters: list[AdapterChoice] = field(default_factory=list)
    max_clips: int = 0  # 0: every clip

    @classmethod
    def from_preset(cls, preset: str | None = None, **values) -> EvalSettings:
        """The preset's settings (default: the one for the model) with `values` on top."""
        model = values.get("model", TINY_MODEL)
        return cls(**preset_values(preset or preset_for(model), model) | values)

    def problems(self) -> list[Problem]:
        p = super().problems(CONDITIONAL_LATENT_FRAMES) + adapter_problems(self.adapters)
        if self.max_clips < 0:
            p.append(Problem("max_clips", f"must be 0 (all) or more (got {self.max_clips})"))
        return p

    def record(self) -> dict:
        out = asdict(self)
        out["adapters"] = [{"name": a.name, "path": a.path, "scale": a.scale} for a in self.adapters]
        out.update(conditional_latent_frames=CONDITIONAL_LATENT_FRAMES, val_sigmas=list(VAL_SIGMAS))
        return out


@dataclass
class EvalClip:
    key: str
    video: Path
    caption: str
    frames: np.ndarray  # uint8 [F, H, W, 3] at the evaluation size
    hand: str | None  # the arm the caption names, robot world only


def load_eval_clips(settings: EvalSettings) -> list[EvalClip]:
    """The first num_frames frames of every (or the first max_clips) clip, resized; refuses unusable clips."""
    root = resolve_data(settings.data)
    items = list_items(root)
    if settings.max_clips:
        items = items[: settings.max_clips]
    if not items:
        raise ValueError(f"data: {settings.data} holds no clips; point --data at a folder of held-out clips.")
    bad = [r for r in check_items(items, num_frames=settings.num_frames) if r.problem]
    if bad:
        listing = "; ".join(f"{r.video}: {r.problem}" for r in bad)
        raise ValueError(f"{len(bad)} clip(s) in {settings.data} cannot be evaluated: {listing}.")
    clips = []
    for item in items:
        frames = _resize(read_frames(item.video, 0, settings.num_frames), settings.height, settings.width)
        match = _HAND_IN_CAPTION.search(item.caption)
        clips.append(EvalClip(item.key, Path(item.video), item.caption, frames, match and match.group(1).lower()))
    return clips


def _resize(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resized exactly as training sees clips (cosmos.frames_to_video_tensor), back to uint8."""
    if frames.shape[1:3] == (height, width):
        return frames
    video = cosmos.frames_to_video_tensor(frames, height, width)  # [3, F, H, W] in [-1, 1]
    return ((video.permute(1, 2, 3, 0).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


# ------------------------------------------------------------------------------------------- validation loss
@torch.no_grad()
def encode_clips(pipe, clips: list[EvalClip]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Clean normalised latents [1,16,T,h,w] and prompt embeddings [1,L,D] of every clip (adapter-independent)."""
    out = []
    for clip in clips:
        video = cosmos.frames_to_video_tensor(clip.frames, *clip.frames.shape[1:3])[None]
        out.append((cosmos.encode_video(pipe, video).float(), cosmos.encode_prompts(pipe, [clip.caption]).float()))
    return out


@torch.no_grad()
def validation_loss(
    transformer, encoded: list[tuple[torch.Tensor, torch.Tensor]], seed: int, spatial_scale: int
) -> float:
    """Mean flow-matching loss over clips x VAL_SIGMAS; the noise of clip i comes from seed and i alone.
    `spatial_scale`: the VAE's spatial compression (cosmos.vae_scale_factors)."""
    transformer.requires_grad_(False)  # flow_matching_loss reads the model dtype from a frozen parameter
    # Under `memory: offload` the weights wait on the CPU and accelerate's hook runs the model on its device.
    hook = getattr(transformer, "_hf_hook", None)
    device = getattr(hook, "execution_device", None) or next(transformer.parameters()).device
    losses = []
    for index, (clean, embeds) in enumerate(encoded):
        k = len(VAL_SIGMAS)
        generator = torch.Generator().manual_seed(seed * 1_000_003 + index)
        draw = cosmos.FlowBatch(
            noise=torch.randn((k, *clean.shape[1:]), generator=generator),
            sigma=torch.tensor(VAL_SIGMAS),
            cond_frames=torch.full((k,), CONDITIONAL_LATENT_FRAMES),
            drop_prompt=torch.zeros(k, dtype=torch.bool),
        )
        clean_k, embeds_k = clean.expand(k, *clean.shape[1:]).to(device), embeds.expand(k, *embeds.shape[1:]).to(device)
        with frozen_dora_norms(transformer):
            loss = cosmos.flow_matching_loss(
                transformer, clean_k, embeds_k, draw, conditional_frame_timestep=1e-4, spatial_scale=spatial_scale
            )
        losses.append(float(loss))
    return statistics.fmean(losses)


# ------------------------------------------------------------------------------------------- clip error
def clip_scores(real: np.ndarray, generated: np.ndarray) -> tuple[float, float]:
    """PSNR (dB, over all compared frames at once) and mean per-frame SSIM of two uint8 [F,H,W,3] clips."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    psnr = peak_signal_noise_ratio(real, generated, data_range=255)
    ssim = statistics.fmean(
        structural_similarity(r, g, channel_axis=-1, data_range=255) for r, g in zip(real, generated)
    )
    return float(min(psnr, 100.0)), float(ssim)  # identical clips: PSNR is infinite; cap it for JSON


@torch.no_grad()
def vae_round_trip(pipe, clean: torch.Tensor) -> np.ndarray:
    """Decode normalised clean latents back to uint8 frames, as the pipeline decodes its output."""
    mean, inv_std = cosmos.latent_normalisers(pipe, clean.device, clean.dtype)
    video = pipe.vae.decode((clean / inv_std + mean).to(pipe.vae.dtype), return_dict=False)[0]
    frames = pipe.video_processor.postprocess_video(video, output_type="np")[0]
    return (np.clip(frames, 0, 1) * 255).round().astype(np.uint8)


# ------------------------------------------------------------------------------------------- the whole run
def evaluate(
    settings: EvalSettings,
    renderer: Renderer | None = None,
    progress=None,
    on_clip=None,
    on_rendered=None,
    step_progress=None,
) -> dict:
    """Every variant's scores on every clip, averaged; the dict `--json` prints. `on_clip(clip, frames)` gets
    each clip with every variant's generated frames (uint8 [F,H,W,3] by variant name) and, under VAE_KEY, the
    real clip's VAE round trip (e.g. for a contact sheet); `on_rendered(index, request, rendered)` the request
    and Rendered of each clip (e.g. to write a comparison); `step_progress` each denoising step (Progress)."""
    problems = settings.problems()
    if problems:
        raise ValueError("; ".join(map(str, problems)))
    clips = load_eval_clips(settings)
    renderer = renderer or Renderer(
        settings.model, settings.revision or None, guardrail=settings.guardrail, precision=settings.precision
    )
    renderer.prepare(settings)
    pipe = renderer.pipe
    variants: list[tuple[str, AdapterChoice | None]] = [(BASE, None)] + [(a.name, a) for a in settings.adapters]
    scores = {name: {"psnr": [], "ssim": [], "hand": []} for name, _ in variants}
    reference = {"vae_psnr": [], "vae_ssim": [], "static_psnr": [], "static_ssim": [], "hand": []}
    encoded = encode_clips(pipe, clips)
    with tempfile.TemporaryDirectory() as scratch:
        for index, (clip, (clean, _)) in enumerate(zip(clips, encoded)):
            if progress:
                progress(index, len(clips), clip.key)
            values = asdict(settings.settings()) | {"seed": settings.seed + index}
            request = GenerateRequest(
                prompt=clip.caption, out_dir=scratch, image=str(clip.video), adapters=settings.adapters, **values
            )
            result = renderer.render_frames(request, step_progress)
            if on_rendered:
                on_rendered(index, request, result)
            rendered = result.frames
            real = clip.frames[1:]  # frame 0 is the condition, not a prediction
            for name, _ in variants:
                psnr, ssim = clip_scores(real, rendered[name][1:])
                scores[name]["psnr"].append(psnr)
                scores[name]["ssim"].append(ssim)
                scores[name]["hand"].append(_hand_correct(rendered[name], clip.hand))
            round_trip = vae_round_trip(pipe, clean)[: len(clip.frames)]
            _add_reference(reference, clip, round_trip)
            if on_clip:
                on_clip(clip, {**rendered, VAE_KEY: round_trip})
    for name, choice in variants:
        use_variant(pipe, choice, bool(settings.adapters))
        scores[name]["val_loss"] = validation_loss(
            pipe.transformer, encoded, settings.seed, cosmos.vae_scale_factors(pipe.vae)[1]
        )
    use_variant(pipe, None, bool(settings.adapters))
    return {
        "variants": {name: _summary(s) | {"val_loss": s["val_loss"]} for name, s in scores.items()},
        "reference": _summary(reference),
        "settings": settings.record()
        | {"clips": len(clips), "keys": [c.key for c in clips], "dtype": str(renderer.dtype).removeprefix("torch.")},
    }


def _hand_correct(frames: np.ndarray, hand: str | None) -> bool | None:
    if hand is None:
        return None
    from trainer.spec.embedded import which_hand_moved

    return which_hand_moved(frames) == hand


def _add_reference(reference: dict, clip: EvalClip, round_trip: np.ndarray) -> None:
    real = clip.frames[1:]
    vae_psnr, vae_ssim = clip_scores(real, round_trip[1:])
    static_psnr, static_ssim = clip_scores(real, np.broadcast_to(clip.frames[:1], real.shape))
    reference["vae_psnr"].append(vae_psnr)
    reference["vae_ssim"].append(vae_ssim)
    reference["static_psnr"].append(static_psnr)
    reference["static_ssim"].append(static_ssim)
    reference["hand"].append(_hand_correct(round_trip, clip.hand))


def _summary(values: dict) -> dict:
    out = {k: statistics.fmean(v) for k, v in values.items() if k not in ("hand", "val_loss")}
    hands = [h for h in values["hand"] if h is not None]
    out["hand_accuracy"] = statistics.fmean(hands) if hands else None
    return out


def format_table(result: dict) -> str:
    """The scores as a fixed-width table, one row per variant, then the reference rows."""
    lines = [f"{'variant':<24} {'val_loss':>9} {'PSNR dB':>8} {'SSIM':>6} {'hand acc':>9}"]
    for name, v in result["variants"].items():
        lines.append(
            f"{name[:24]:<24} {v['val_loss']:>9.4f} {v['psnr']:>8.2f} {v['ssim']:>6.3f} "
            f"{_fraction(v['hand_accuracy']):>9}"
        )
    ref = result["reference"]
    lines.append(
        f"{'(VAE round trip)':<24} {'':>9} {ref['vae_psnr']:>8.2f} {ref['vae_ssim']:>6.3f} "
        f"{_fraction(ref['hand_accuracy']):>9}"
    )
    lines.append(f"{'(first frame, still)':<24} {'':>9} {ref['static_psnr']:>8.2f} {ref['static_ssim']:>6.3f}")
    s = result["settings"]
    lines.append(
        f"{s['clips']} clips of {s['data']}; {s['num_frames']} frames {s['width']}x{s['height']}, "
        f"{s['steps']} steps, guidance {s['guidance']}, seed {s['seed']}"
    )
    return "\n".join(lines)


def _fraction(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


SHEET_GAP_PX = 6  # white between frames and rows: neighbouring frames' arms do not read as one scene


def contact_sheet(clips: list[tuple[EvalClip, dict[str, np.ndarray]]], every: int = 4, scale: int = 4) -> np.ndarray:
    """Per clip, labelled rows: the conditioning first frame, each variant (and the VAE round trip when given),
    the real clip; frames 0, every, 2*every ... across, upscaled `scale` times (nearest), a white gap between
    frames. uint8 [H, W, 3]. When the caption names an arm (robot world), a line above gives it and each row says
    which arm moves in it (`hand_scorer.which_hand_moved`), so the picture reads without the caption."""
    from PIL import Image, ImageDraw

    from trainer.spec.embedded import which_hand_moved

    blocks = []
    cell = clips[0][0].frames.shape[2] * scale + SHEET_GAP_PX  # one frame and the gap after it
    for clip, frames in clips:
        picked = list(range(0, len(clip.frames), every))
        width = 110 + len(picked) * cell - SHEET_GAP_PX
        if clip.hand:
            line = Image.new("RGB", (width, 16), (255, 255, 255))
            ImageDraw.Draw(line).text((6, 2), f"caption: {clip.caption}", fill=(0, 0, 0))
            blocks.append(np.asarray(line))
        first = np.full_like(clip.frames[picked], 255)
        first[0] = clip.frames[0]
        rows = [
            ("first frame", first),
            *((name, f[picked]) for name, f in frames.items()),
            ("ground truth", clip.frames[picked]),
        ]
        for label, row in rows:
            height = row.shape[1] * scale
            strip = np.full((height, width - 110, 3), 255, np.uint8)
            for i, frame in enumerate(row):
                big = Image.fromarray(frame).resize((frame.shape[1] * scale, height), Image.NEAREST)
                strip[:, i * cell : i * cell + big.width] = np.asarray(big)
            tag = Image.new("RGB", (110, height), (255, 255, 255))
            ImageDraw.Draw(tag).text((6, height // 2 - 12), label[:17], fill=(0, 0, 0))
            if clip.hand and label != "first frame":
                moved = which_hand_moved(frames.get(label, clip.frames))
                verdict = "unclear" if moved == "unclear" else f"{moved} arm moves"
                ImageDraw.Draw(tag).text((6, height // 2 + 2), verdict, fill=(0, 90, 200))
            blocks.append(np.concatenate([np.asarray(tag), strip], axis=1))
            blocks.append(np.full((SHEET_GAP_PX, width, 3), 255, np.uint8))
        blocks.append(np.full((8, width, 3), 255, np.uint8))
    header = Image.new("RGB", (blocks[0].shape[1], 18), (255, 255, 255))
    draw = ImageDraw.Draw(header)
    for i, frame in enumerate(range(0, len(clips[0][0].frames), every)):
        draw.text((110 + i * cell + 4, 4), f"frame {frame}", fill=(0, 0, 0))
    return np.concatenate([np.asarray(header), *blocks[:-2]], axis=0)
