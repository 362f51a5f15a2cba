"""Predicted peak GPU memory of a training run or a generation, before anything is loaded; torch-free.

The numbers come from a model's memory profile (trainer/spec/memory_profiles.json, written by
`python -m trainer.memory_profile`; for another model folder, `python -m trainer train --dry-run` writes one to
the user cache): exact parameter counts, and activation bytes fitted on saved-tensor bytes measured on the real
block architecture. docs/memory.md states the model and its limits. The studio imports this module (no torch);
`--dry-run`, the Train form and the Generate tab show its `Estimate`.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

GIB = 2**30
PROFILES_FILE = Path(__file__).resolve().parent / "memory_profiles.json"
TEXT_TOKENS = 512  # every prompt is padded to 512 tokens
MARGIN = 0.10  # of the parts' sum: the backward's activation gradients, allocator fragmentation
CUDA_OVERHEAD_GIB = 1.0  # outside PyTorch's allocator: the CUDA context, cuBLAS and cuDNN workspaces
CARD_SIZES_GB = (16, 24, 48, 80)


@dataclass(frozen=True)
class Part:
    name: str
    bytes: float
    note: str = ""


@dataclass(frozen=True)
class Estimate:
    """The predicted peak of the main phase, by part (`margin` included), and of an earlier phase that holds other
    things (a training run's cache build: the encoders, one at a time); the peak is the larger."""

    what: str
    parts: tuple[Part, ...]
    before: Part | None = None

    @property
    def total(self) -> float:
        return max(sum(p.bytes for p in self.parts), self.before.bytes if self.before else 0.0)

    @property
    def total_gib(self) -> float:
        return self.total / GIB

    def fits(self, card_gib: float) -> bool:
        return self.total_gib <= usable_gib(card_gib)

    def lines(self) -> list[str]:
        out = [f"predicted peak GPU memory of {self.what}: {size_text(self.total_gib)}"]
        for part in [*self.parts, *([self.before] if self.before else [])]:
            note = f" ({part.note})" if part.note else ""
            out.append(f"  {part.name:<34} {part.bytes / GIB:7.2f} GiB{note}")
        return out

    def as_dict(self) -> dict:
        parts = {p.name: round(p.bytes / GIB, 3) for p in self.parts}
        return {"what": self.what, "total_gib": round(self.total_gib, 3), "parts": parts}


def size_text(gib: float) -> str:
    """A total as a person reads it: GiB to one decimal, in MiB below 1 GiB (the tiny model's 20 MiB is not 0.0)."""
    return f"{gib:.1f} GiB" if gib >= 0.95 else f"{gib * 1024:.0f} MiB"


def usable_gib(card_gib: float) -> float:
    """What PyTorch can allocate on a card of `card_gib` GiB."""
    return card_gib - CUDA_OVERHEAD_GIB


# --------------------------------------------------------------------------------------------- profiles
def load_profile(model: str) -> dict | None:
    """The memory profile of `model` ("tiny", the 2B Hub id, or a folder whose profile `--dry-run` stored), else
    None (the estimate is then unknown, never guessed)."""
    shipped = json.loads(PROFILES_FILE.read_text())
    if model in shipped:
        return shipped[model]
    path = stored_profile_path(model)
    if path is not None and path.exists():
        return json.loads(path.read_text())
    return None


def stored_profile_path(model: str) -> Path | None:
    """Where `--dry-run` stores the profile of a local model folder (named after its component configs)."""
    from trainer.spec.user_cache import cache_root

    folder = Path(model).expanduser()
    digest = configs_digest_of_folder(folder)
    return cache_root() / "memory-profiles" / f"{digest}.json" if digest else None


def configs_digest_of_folder(folder: Path) -> str | None:
    import hashlib

    configs = {}
    for name in ("transformer", "vae", "text_encoder"):
        try:
            raw = json.loads((folder / name / "config.json").read_text())
        except (OSError, ValueError):
            return None
        configs[name] = {k: v for k, v in raw.items() if not k.startswith("_")}
    return hashlib.sha256(json.dumps(configs, sort_keys=True).encode()).hexdigest()[:16]


def tokens(profile: dict, height: int, width: int, num_frames: int) -> int:
    """Transformer tokens of one clip: its latent frames (the first frame alone, then one per `frames`) over the
    patch's frames, times its height and width over `pixels` per token (the VAE's compression times the patch)."""
    per = profile["pixels_per_token"]
    latent_frames = ((num_frames - 1) // per["frames"] + 1) // per["patch_frames"]
    return latent_frames * (height // per["pixels"]) * (width // per["pixels"])


def adapter_parameters(profile: dict, target_modules: list[str], rank: int, adapter: str) -> int:
    """Trainable parameters of the adapter: r (in + out) per targeted Linear, plus out for DoRA's magnitude.
    A target matches a Linear as peft matches it: the name itself or its last dotted parts."""
    total = 0
    for name, (fan_in, fan_out, count) in profile["parameters"]["linears"].items():
        if any(name == t or name.endswith("." + t) for t in target_modules):
            total += count * (rank * (fan_in + fan_out) + (fan_out if adapter == "dora" else 0))
    return total


def activation_bytes(profile: dict, cfg, count: int) -> tuple[float, str]:
    """Bytes of activations at the step's peak for one micro-batch, and how they are made up."""
    params = profile["parameters"]
    layers = params["layers"]
    precision = "bf16" if cfg.mixed_precision in ("bf16", "fp16") else "fp32"
    fits = profile["activations"][cfg.adapter][precision]
    r = cfg.rank

    def saved(coef, blocks):
        c0, c1, c2, c3, c4 = coef
        return c0 + c1 * count + blocks * (c2 + c3 * count + c4 * count * r)

    policy = cfg.checkpointing_policy if cfg.gradient_checkpointing else "off"
    if policy == "off":
        return saved(fits["off"], layers) * cfg.batch_size, "every block's saved tensors"
    _, _, c2, c3, c4 = fits["off"]
    one_block = c2 + c3 * count + c4 * count * r  # recomputed in its own backward
    total = saved(fits["every_block"], layers) + one_block
    how = "block inputs + one block recomputed"
    if policy == "selective":
        act = 2 if precision == "bf16" else 4
        total += layers * count * (params["hidden"] * act + params["heads"] * 4)  # kept outputs + log-sum-exp
        how += " + every block's attention output"
    return total * cfg.batch_size, how


# --------------------------------------------------------------------------------------------- training
def training_estimate(cfg, cache_complete: bool = False, profile: dict | None = None) -> Estimate | None:
    """The peak of a training run of `cfg` (a TrainConfig), or None when the model has no profile.

    `cache_complete`: the latent cache already holds every clip (the encoders are then never loaded)."""
    profile = profile or load_profile(cfg.model)
    if profile is None:
        return None
    params = profile["parameters"]
    weight = 2 if cfg.mixed_precision in ("bf16", "fp16") else 4
    cached = cfg.cache != "off"
    frozen = params["transformer"] - (params["crossattn_proj"] if cached else 0)
    trainable = adapter_parameters(profile, cfg.target_modules, cfg.rank, cfg.adapter)
    count = tokens(profile, cfg.height, cfg.width, cfg.num_frames)
    activations, how = activation_bytes(profile, cfg, count)
    encoders = (params["vae"] + params["text_encoder"]) * weight
    parts = [
        Part("frozen weights", frozen * weight, "transformer" + (", prompt projection cached" if cached else "")),
        Part("trainable weights+grads+AdamW", trainable * 16, f"{trainable:,} fp32 parameters x 16 bytes"),
        Part("activations", activations, f"{count:,} tokens x batch {cfg.batch_size}; {how}"),
    ]
    if not cached:
        parts.append(Part("encoders", encoders, "VAE + text encoder, run every step"))
    subtotal = sum(p.bytes for p in parts)
    parts.append(Part("margin", subtotal * MARGIN, f"{MARGIN:.0%}: activation gradients, fragmentation"))
    before = None
    if cached and not cache_complete:  # the cache build moves the text encoder, then the VAE, to the GPU alone
        largest = max(params["text_encoder"] + params["crossattn_proj"], params["vae"]) * weight * (1 + MARGIN)
        before = Part("(before: the cache build)", largest, "one encoder at a time, before the first step")
    return Estimate(f"training {cfg.name!r}", tuple(parts), before)


def cheapest_fix(cfg, card_gib: float, cache_complete: bool = False, profile: dict | None = None) -> str | None:
    """The cheapest settings change (in cost to quality and speed) that makes `cfg` fit a card of `card_gib`
    GiB, as a sentence; None when it already fits or nothing tried fits."""
    profile = profile or load_profile(cfg.model)
    if profile is None:
        return None

    def fits(c):
        return training_estimate(c, cache_complete, profile).fits(card_gib)

    if fits(cfg):
        return None
    steps: list[tuple[str, dict]] = []
    if cfg.cache == "off":
        steps.append(("cache auto", {"cache": "auto"}))
    if not cfg.gradient_checkpointing:
        steps.append(
            (
                "gradient_checkpointing on, selective",
                {"gradient_checkpointing": True, "checkpointing_policy": "selective"},
            )
        )
    if cfg.checkpointing_policy != "every_block" or not cfg.gradient_checkpointing:
        steps.append(
            (
                "checkpointing_policy every_block",
                {"gradient_checkpointing": True, "checkpointing_policy": "every_block"},
            )
        )
    changed = cfg
    said: list[str] = []
    for text, change in steps:
        changed = replace(changed, **change)
        said.append(text)
        if fits(changed):
            return "set " + ", then ".join(said)
    for frames in range(changed.num_frames - 4, 8, -4):  # 4k+1 frame counts, down to 9
        if fits(replace(changed, num_frames=frames)):
            return "set " + ", ".join([*said, f"num_frames {frames}"])
    for scale in (0.875, 0.75, 0.625, 0.5):
        h, w = (max(16, int(v * scale) // 16 * 16) for v in (changed.height, changed.width))
        if fits(replace(changed, height=h, width=w)):
            return "set " + ", ".join([*said, f"height {h}, width {w}"])
    for rank in (16, 8, 4):
        if rank < changed.rank and fits(replace(changed, rank=rank, alpha=changed.alpha * rank / changed.rank)):
            return "set " + ", ".join([*said, f"rank {rank}"])
    return None


def verdict(estimate: Estimate, card_gib: float, card_label: str) -> str:
    room = usable_gib(card_gib)
    if estimate.fits(card_gib):
        return f"fits {card_label}: {size_text(estimate.total_gib)} of {room:.1f} GiB usable"
    return f"does not fit {card_label}: {size_text(estimate.total_gib)} needed, {room:.1f} GiB usable"


def training_report(cfg, card_gb: float | None = None, cache_complete: bool = False) -> list[str]:
    """The lines `--dry-run` prints and the Train form shows: the estimate by part, the verdict for the visible
    GPU or `card_gb` (else for each common size), and the cheapest fix where it does not fit."""
    profile = load_profile(cfg.model)
    estimate = training_estimate(cfg, cache_complete, profile)
    if estimate is None:
        return [
            f"no memory estimate for {cfg.model!r} yet: `python -m trainer train --config FILE --dry-run` measures "
            "its profile once"
        ]
    return estimate.lines() + _verdicts(estimate, card_gb, lambda gib: cheapest_fix(cfg, gib, cache_complete, profile))


def _verdicts(estimate: Estimate, card_gb: float | None, fix) -> list[str]:
    cards = [(card_gb, f"a {card_gb:g} GB card")] if card_gb else []
    if not cards:
        visible = visible_gpu_gib()
        cards = [(visible, f"this GPU ({visible:.0f} GiB)")] if visible else []
    cards = cards or [(float(size), f"{'an' if str(size)[0] == '8' else 'a'} {size} GB card") for size in CARD_SIZES_GB]
    out = []
    for gib, label in cards:
        line = verdict(estimate, gib, label)
        if not estimate.fits(gib) and fix:
            remedy = fix(gib)
            line += f"; to fit: {remedy}" if remedy else "; no change of cache, checkpointing, size or rank fits it"
        out.append(line)
    return out


@functools.cache
def visible_gpu_gib() -> float | None:
    """Total memory of the first visible NVIDIA GPU in GiB (nvidia-smi, so no torch; asked once), else None."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        return int(out.split()[0]) / 1024  # MiB
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


# --------------------------------------------------------------------------------------------- generation
# A no-grad transformer forward holds about this many [tokens x hidden] tensors at once (the residual stream,
# the normalised input, q, k, v, the attention output, and the 4x-wide feed-forward hidden layer with its
# activation): an assumption checked against the GPU by bench/gpu.sh.
FORWARD_WIDTHS = 12
# The Wan VAE decodes one latent frame (4 video frames) at a time; its widest stage holds about this many
# full-resolution x base_dim tensors (an assumption, like the one above). Tiled decoding bounds the tile to
# 256x256 pixels.
DECODE_WIDTHS = 8
VAE_BASE_DIM = 96
TILE = 256


def generation_estimate(settings, mode: str, profile: dict | None = None) -> Estimate | None:
    """The peak of one generation with `settings` (GenerateSettings) in memory mode `mode` (full or offload)."""
    profile = profile or load_profile(settings.model)
    if profile is None:
        return None
    params = profile["parameters"]
    weight = 4 if settings.precision == "fp32" else 2
    count = tokens(profile, settings.height, settings.width, settings.num_frames)
    forward = (count + TEXT_TOKENS) * params["hidden"] * weight * FORWARD_WIDTHS
    h, w = (
        (min(v, TILE) for v in (settings.height, settings.width))
        if mode == "offload"
        else (settings.height, settings.width)
    )
    decode = 4 * h * w * VAE_BASE_DIM * weight * DECODE_WIDTHS
    weights = {name: params[name] * weight for name in ("transformer", "vae", "text_encoder")}
    if mode == "full":
        parts = [
            Part("weights", sum(weights.values()), "transformer + VAE + text encoder, all on the GPU"),
            Part("working memory", max(forward, decode), "the larger of a transformer forward and the VAE decode"),
        ]
    else:  # model CPU offload: one component on the GPU at a time, the VAE decoding in tiles
        phases = {
            "text encoder": weights["text_encoder"],  # its 512 tokens' activations are megabytes
            "transformer": weights["transformer"] + forward,
            "VAE decode (tiled)": weights["vae"] + decode,
        }
        largest = max(phases, key=phases.get)
        parts = [Part("largest component + its work", phases[largest], f"{largest}; the others wait on the CPU")]
    subtotal = sum(p.bytes for p in parts)
    parts.append(Part("margin", subtotal * MARGIN, f"{MARGIN:.0%}"))
    return Estimate(f"generation ({mode})", tuple(parts))


def pick_generation_mode(settings, card_gib: float | None, profile: dict | None = None) -> str:
    """`memory: auto`'s choice: full when it fits the card (or no GPU is known), else offload."""
    if card_gib is None:
        return "full"
    estimate = generation_estimate(settings, "full", profile)
    return "full" if estimate is None or estimate.fits(card_gib) else "offload"


def generation_report(settings, mode: str, card_gib: float | None = None) -> list[str]:
    """Lines for the Generate tab: the estimate and whether it fits the visible GPU (else each common size)."""
    estimate = generation_estimate(settings, mode)
    if estimate is None:
        return [f"no memory estimate for {settings.model!r} (no profile)"]
    return estimate.lines() + _verdicts(estimate, card_gib, None)
