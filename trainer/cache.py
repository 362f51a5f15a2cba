"""Latents and prompt embeddings encoded once, kept on disk, and served to the training loop (`cache: auto`).

Layout: `<cache_root>/latents/<model digest>/` holds one safetensors file per item, written atomically and named
by a digest of what the item depends on, so a cache is shared by every run that needs the same tensors and an
entry is never read for inputs it was not made from:

    videos/<digest>.safetensors   digest of (video sha256, height, width, num_frames, window start): the VAE
                                  posterior mean of that window, in the VAE's dtype, before normalisation
                                  (normalising at load repeats the live path's float32 arithmetic exactly)
    prompts/<digest>.safetensors  digest of the caption text: its prompt embedding, projected (below)
    model.json                    what the model digest covers, for people

The model digest covers the VAE, text encoder and tokenizer files (sha256; Hugging Face blobs are named by their
hash, local files are hashed once and remembered by size and mtime), the frozen projection's weights, the
encoding dtype, the diffusers and transformers versions and `FORMAT`.

Projected prompts: a real embedding is 512 x 100352 values (98 MiB in bf16). The transformer's first act is the
frozen `crossattn_proj = GELU(W e + b)`. The cache stores u = W e (512 x 1024, 1 MiB in bf16) and the transformer
gets `PromptTail` (GELU(u + b)) in place of `crossattn_proj`. This is exact, CFG dropout included: the loss zeroes
the embedding before the projection, and W 0 = 0, so zeroing u gives the same GELU(b). When the projection is
trainable (named in target_modules) the raw embedding is stored instead.

Windows: a clip longer than num_frames gets the windows `window_start(..., choices=cache_windows)` can draw,
one of which each epoch trains on (temporal augmentation, as in the live path).
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from trainer import cosmos
from trainer.batches import Clip, LiveBatches, clip_video
from trainer.cache_identity import (
    FORMAT,
    PROMPT_TOKENS,
    CacheError,
    components_fingerprint,
    digest,
    write_atomic,
)
from trainer.data_plan import window_candidates, window_start
from trainer.spec.config import TrainConfig
from trainer.spec.user_cache import cache_root

EVENT_INTERVAL_S = 1.0
log = logging.getLogger("trainer")


def cached_starts(frames: int, num_frames: int, choices: int) -> list[int]:
    """Every first frame `window_start(frames, num_frames, ..., choices=choices)` can return."""
    last = frames - num_frames
    if last <= 0:
        return [0]
    return window_candidates(frames, num_frames, choices) if choices < last + 1 else list(range(last + 1))


# --------------------------------------------------------------------------------------------- projection
class PromptTail(nn.Module):
    """Finishes `crossattn_proj` on a cached u = W e: GELU(u + b). The full projection is kept on the CPU for
    `restore_projection`."""

    def __init__(self, projection: nn.Sequential):
        super().__init__()
        self.bias = nn.Parameter(projection[0].bias.detach().clone(), requires_grad=False)
        self.activation = projection[1]
        self._full = (projection.to("cpu"),)  # a tuple: not a submodule, so .to(device) leaves it on the CPU

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.activation(u + self.bias.to(u.dtype))


def frozen_projection(transformer) -> nn.Linear | None:
    """The Linear of a frozen `crossattn_proj = Sequential(Linear, GELU)`, or None when it must stay in the loop."""
    proj = getattr(transformer, "crossattn_proj", None)
    if isinstance(proj, PromptTail):
        return proj._full[0][0]
    ok = (
        isinstance(proj, nn.Sequential)
        and len(proj) == 2
        and type(proj[0]) is nn.Linear
        and proj[0].bias is not None
        and isinstance(proj[1], nn.GELU)
    )
    return proj[0] if ok and not any(p.requires_grad for p in proj.parameters()) else None


def restore_projection(transformer) -> None:
    """Puts the full `crossattn_proj` back (to run the transformer on raw prompt embeddings again)."""
    if isinstance(getattr(transformer, "crossattn_proj", None), PromptTail):
        full = transformer.crossattn_proj._full[0]
        transformer.crossattn_proj = full.to(transformer.crossattn_proj.bias.device)


# --------------------------------------------------------------------------------------------- the cache
@dataclass
class BuildReport:
    total: int
    reused: int
    encoded: int
    seconds: float
    folder: Path


class LatentCache:
    """Which files a config needs (every process computes the same plan) and how to fill in the missing ones."""

    def __init__(
        self,
        cfg: TrainConfig,
        pipe,
        clips: list[Clip],
        fingerprint: dict,
        root: Path | None = None,
        identity: str | None = None,
    ):
        self.cfg, self.clips = cfg, clips
        self.projection = frozen_projection(pipe.transformer)
        ident = components_fingerprint(pipe, self.projection, identity)
        self.folder = (root or cache_root() / "latents") / digest(ident)[:24]
        self._identity = ident
        sha = {item["key"]: item["video_sha256"] for item in fingerprint["items"]}
        self.windows: list[list[tuple[int, Path]]] = []
        for clip in clips:
            starts = cached_starts(clip.frames, cfg.num_frames, cfg.cache_windows)
            self.windows.append(
                [(s, self._file("videos", sha[clip.key], cfg.height, cfg.width, cfg.num_frames, s)) for s in starts]
            )
        self.prompts = {c.caption: self._file("prompts", c.caption) for c in clips}

    def _file(self, kind: str, *key) -> Path:
        return self.folder / kind / f"{digest(kind, *key)[:32]}.safetensors"

    @property
    def total(self) -> int:
        return sum(len(w) for w in self.windows) + len(self.prompts)

    def missing(self) -> tuple[list[str], list[tuple[int, int, Path]]]:
        """(captions, (clip index, start, file)) that have no file yet."""
        captions = [c for c, path in self.prompts.items() if not path.exists()]
        videos = [(i, s, p) for i, windows in enumerate(self.windows) for s, p in windows if not p.exists()]
        return captions, videos

    def build(self, pipe, device: torch.device, events=None, progress: bool = True) -> BuildReport:
        """Encodes what is missing: prompts with the text encoder, then windows with the VAE, each on `device`
        only while it works and back on the CPU after."""
        t0 = time.perf_counter()
        captions, videos = self.missing()
        total, reused = self.total, self.total - len(captions) - len(videos)
        self._check_space(pipe, len(captions), len(videos))
        write_atomic(self.folder / "model.json", lambda tmp: tmp.write_text(json.dumps(self._identity, indent=2)))
        bar = tqdm(total=total, initial=reused, desc="cache", unit="item", disable=not progress, file=sys.stderr)
        ticker = _Ticker(events, total - reused, reused)
        if captions:
            self._encode_prompts(pipe, device, captions, lambda: (bar.update(), ticker.tick()))
        if videos:
            self._encode_videos(pipe, device, videos, lambda: (bar.update(), ticker.tick()))
        bar.close()
        ticker.finish()
        report = BuildReport(total, reused, total - reused, time.perf_counter() - t0, self.folder)
        log.info(
            "cache: %d items in %s: %d reused, %d encoded in %.1f s",
            total,
            self.folder,
            reused,
            report.encoded,
            report.seconds,
        )
        return report

    def _check_space(self, pipe, captions: int, videos: int) -> None:
        cfg, config = self.cfg, pipe.transformer.config
        temporal, spatial = cosmos.vae_scale_factors(pipe.vae)
        channels = pipe.vae.config.z_dim
        latent = (
            channels * cosmos.latent_frames(cfg.num_frames, temporal) * (cfg.height // spatial) * (cfg.width // spatial)
        )
        if self.projection is not None:
            prompt = PROMPT_TOKENS * self.projection.out_features * self.projection.weight.dtype.itemsize
        else:
            prompt = PROMPT_TOKENS * config.crossattn_proj_in_channels * pipe.text_encoder.dtype.itemsize
        need = (videos * latent * pipe.vae.dtype.itemsize + captions * prompt) * 1.05
        self.folder.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.folder).free
        if need > free:
            raise CacheError(
                f"the latent cache needs {need / 1e9:.1f} GB in {self.folder} but only "
                f"{free / 1e9:.1f} GB are free; free some space, point COSMOS_STUDIO_CACHE at a larger "
                "disk, or set cache: off."
            )

    @torch.no_grad()
    def _encode_prompts(self, pipe, device, captions: list[str], done: Callable) -> None:
        pipe.text_encoder.to(device)
        weight = self.projection.weight.detach().to(device) if self.projection is not None else None
        for caption in captions:
            embeds = cosmos.encode_prompts(pipe, [caption], device)[0]
            if weight is not None:
                embeds = F.linear(embeds.to(weight.dtype), weight)
            meta = {"caption": caption[:2000], "projected": str(weight is not None)}
            _save(self.prompts[caption], {"embeds": embeds}, meta)
            done()
        del weight
        pipe.text_encoder.to("cpu")

    @torch.no_grad()
    def _encode_videos(self, pipe, device, videos: list[tuple[int, int, Path]], done: Callable) -> None:
        cfg, vae = self.cfg, pipe.vae
        vae.to(device)
        pixels = _prefetch(lambda item: clip_video(self.clips[item[0]], item[1], cfg), videos)
        for (i, start, path), video in zip(videos, pixels):
            mean = vae.encode(video[None].to(device, vae.dtype)).latent_dist.mean[0]
            _save(path, {"latent": mean}, {"clip": self.clips[i].key, "start": str(start)})
            done()
        vae.to("cpu")

    def batches(self, pipe, device: torch.device) -> CachedBatches:
        captions, videos = self.missing()
        if captions or videos:
            raise CacheError(
                f"{len(captions) + len(videos)} cache entries are missing from {self.folder} after it "
                "was built: every process must see the same cache folder (set COSMOS_STUDIO_CACHE to a "
                "shared folder), or set cache: off."
            )
        return CachedBatches(self.cfg, self.clips, self.windows, self.prompts, pipe, device)


class CachedBatches:
    """Serves the same (clean latents, prompt embeddings) as `LiveBatches.get`, from the cache files."""

    def __init__(
        self,
        cfg: TrainConfig,
        clips: list[Clip],
        windows: list[list[tuple[int, Path]]],
        prompts: dict[str, Path],
        pipe,
        device: torch.device,
    ):
        self.cfg, self.clips, self.device = cfg, clips, device
        self.windows = [dict(w) for w in windows]
        self.prompts = prompts
        self.mean, self.inv_std = cosmos.latent_normalisers(pipe, device, torch.float32)

    def get(self, indices: list[int], epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        latents, embeds = [], []
        for i in indices:
            start = window_start(self.clips[i].frames, cfg.num_frames, cfg.seed, epoch, i, choices=cfg.cache_windows)
            latents.append(_load(self.windows[i][start], "latent"))
            embeds.append(_load(self.prompts[self.clips[i].caption], "embeds"))
        clean = torch.stack(latents).to(self.device, non_blocking=True).float()
        return (clean - self.mean) * self.inv_std, torch.stack(embeds).to(self.device, non_blocking=True).float()


def make_batches(cfg: TrainConfig, pipe, clips: list[Clip], fingerprint: dict, accelerator, events=None):
    """The batch source of a run: live encoding (`cache: off`), or the cache, built before the first step by the
    main process of each machine while the others wait. With the cache, the VAE and text encoder end on the CPU
    (or, when the pipeline was loaded without them, are loaded only for missing entries and dropped after), and a
    projected cache replaces the transformer's `crossattn_proj` with `PromptTail`."""
    device = accelerator.device
    if cfg.cache == "off":
        return LiveBatches(cfg, pipe, clips, device)
    latent_cache = LatentCache(cfg, pipe, clips, fingerprint)
    lazy = not cosmos.encoders_loaded(pipe)
    if accelerator.is_local_main_process:
        captions, videos = latent_cache.missing()
        if not cosmos.encoders_loaded(pipe):
            if captions or videos:
                cosmos.load_encoders(pipe)
            else:
                log.info("encoders: not loaded, the latent cache covers every clip")
        latent_cache.build(pipe, device, events if accelerator.is_main_process else None)
    accelerator.wait_for_everyone()
    if lazy:
        cosmos.unload_encoders(pipe)  # loaded only to fill the cache: free their memory for the steps
    release_encoders(pipe)
    if latent_cache.projection is not None:
        pipe.transformer.crossattn_proj = PromptTail(pipe.transformer.crossattn_proj)
    return latent_cache.batches(pipe, device)


def release_encoders(pipe) -> None:
    """Training from the cache never runs the VAE or the text encoder: neither stays on the accelerator."""
    for module in (pipe.vae, pipe.text_encoder):
        if module.device.type != "meta":  # a placeholder of load_pipeline(encoders=False) holds nothing to move
            module.to("cpu")
    if torch.cuda.is_available():
        torch.cuda.empty_cache()  # once, so the freed encoder memory is returned before the step allocates


# --------------------------------------------------------------------------------------------- helpers
class _Ticker:
    """The studio's progress, as trainer.spec.run_folder documents it (done of total to encode; reused found): a `cache`
    event at the start, at most one a second while encoding, and one at the end."""

    def __init__(self, events, total: int, reused: int):
        self.events, self.total, self.reused, self.done = events, total, reused, 0
        self.last = time.monotonic()
        self._emit()

    def _emit(self) -> None:
        if self.events is not None:
            self.events.emit("cache", done=self.done, total=self.total, reused=self.reused)

    def tick(self) -> None:
        self.done += 1
        if time.monotonic() - self.last >= EVENT_INTERVAL_S:
            self.last = time.monotonic()
            self._emit()

    def finish(self) -> None:
        if self.total:
            self._emit()


def _prefetch(fn: Callable, items: Iterable, depth: int = 2) -> Iterator:
    """fn over items in order, computing up to `depth` ahead on a thread (video decoding overlaps encoding)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = []
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) > depth:
                yield pending.pop(0).result()
        for future in pending:
            yield future.result()


def _save(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    write_atomic(path, lambda tmp: save_file(tensors, str(tmp), metadata={"format": str(FORMAT), **metadata}))


def _load(path: Path, name: str) -> torch.Tensor:
    try:
        return load_file(str(path))[name]
    except (OSError, SafetensorError, KeyError) as exc:
        raise CacheError(
            f"cache entry {path} cannot be read ({exc}); delete {path.parent.parent} to rebuild it, or set cache: off."
        ) from None
