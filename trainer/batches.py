"""Training clips and the tensors each micro-batch trains on (clean latents + prompt embeddings).

`load_clips` applies the no-silent-substitution rule: an unusable clip stops the run before any step, naming
every bad clip, unless the config says `skip_invalid: true` (then they are dropped and listed in the run folder).
`LiveBatches` encodes each batch on the fly, as the recipe does; `trainer.cache` serves the same tensors from disk.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from trainer import cosmos
from trainer.data_plan import window_start
from trainer.datasets import DatasetError, check_items, dataset_fingerprint, list_items
from trainer.spec.config import TrainConfig
from trainer.spec.embedded import resolve_data
from trainer.spec.run_folder import INVALID_FILE, write_json_atomic
from trainer.video import read_frames

log = logging.getLogger("trainer")


@dataclass(frozen=True)
class Clip:
    key: str
    video: Path
    caption: str
    frames: int


def load_clips(cfg: TrainConfig, run_dir: Path | None) -> tuple[list[Clip], dict]:
    """Usable clips of cfg.data and the dataset fingerprint; writes invalid_items.json when dropping clips."""
    items = list_items(resolve_data(cfg.data), caption_variant=cfg.caption_variant, prompt_prefix=cfg.prompt_prefix)
    if not items:
        raise DatasetError(f"data: {cfg.data} holds no clips; add videos or point data at another folder.")
    reports = check_items(items, num_frames=cfg.num_frames, height=cfg.height, width=cfg.width)
    bad = [r for r in reports if r.problem]
    if bad and not cfg.skip_invalid:
        listing = "; ".join(f"{r.video}: {r.problem}" for r in bad)
        raise DatasetError(
            f"{len(bad)} of {len(items)} clips in {cfg.data} are unusable: {listing}. Fix or remove them, "
            "or set skip_invalid: true to train without them."
        )
    if bad and run_dir is not None:
        write_json_atomic(run_dir / INVALID_FILE, [{"video": str(r.video), "problem": r.problem} for r in bad])
        log.warning("skip_invalid: dropped %d unusable clip(s), listed in %s", len(bad), INVALID_FILE)
    good = {str(r.video) for r in reports if not r.problem}
    frames = {str(r.video): r.frames for r in reports}
    clips = [Clip(i.key, Path(i.video), i.caption or "", frames[str(i.video)]) for i in items if str(i.video) in good]
    if not clips:
        raise DatasetError(f"data: none of the {len(items)} clips in {cfg.data} is usable; run check-data on it.")
    usable = [i for i in items if str(i.video) in good]
    return clips, {"clips": len(clips), **dataset_fingerprint(usable)}


def clip_video(clip: Clip, start: int, cfg: TrainConfig) -> torch.Tensor:
    """The pixels one window of a clip trains on, [3, num_frames, height, width] in [-1, 1] (live and cached)."""
    frames = read_frames(clip.video, start=start, count=cfg.num_frames)
    return cosmos.frames_to_video_tensor(frames, cfg.height, cfg.width)


class LiveBatches:
    """Reads, resizes and encodes every micro-batch when it is needed (the recipe's way; no cache)."""

    def __init__(self, cfg: TrainConfig, pipe, clips: list[Clip], device: torch.device):
        self.cfg, self.pipe, self.clips, self.device = cfg, pipe, clips, device
        pipe.vae.to(device)
        pipe.text_encoder.to(device)

    def get(self, indices: list[int], epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        videos = []
        for i in indices:
            start = window_start(self.clips[i].frames, cfg.num_frames, cfg.seed, epoch, i)
            videos.append(clip_video(self.clips[i], start, cfg))
        clean = cosmos.encode_video(self.pipe, torch.stack(videos).to(self.device))
        embeds = cosmos.encode_prompts(self.pipe, [self.clips[i].caption for i in indices], self.device)
        return clean, embeds.float()
