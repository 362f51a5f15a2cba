"""Which clips, and which window of each, every micro-batch of every process trains on.

A pure function of (seed, step): resuming at step N replays exactly the data order an uninterrupted run would
have seen, and every data-parallel process gets its own disjoint share of each epoch with the same number of
steps (the remainder of an uneven split is dropped for that epoch).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


class PlanError(ValueError):
    pass


@dataclass(frozen=True)
class DataPlan:
    clips: int
    processes: int
    process_index: int
    batch_size: int
    gradient_accumulation: int
    seed: int

    def __post_init__(self):
        if self.steps_per_epoch < 1:
            raise PlanError(
                f"{self.clips} usable clips are too few for batch_size {self.batch_size} x gradient_accumulation "
                f"{self.gradient_accumulation} x {self.processes} processes; add clips or lower those settings."
            )

    @property
    def clips_per_process(self) -> int:
        return self.clips // self.processes

    @property
    def steps_per_epoch(self) -> int:
        return self.clips_per_process // self.batch_size // self.gradient_accumulation

    def total_steps(self, epochs: int, max_steps: int) -> int:
        return max_steps if max_steps > 0 else epochs * self.steps_per_epoch

    def micro_batch(self, step: int, micro: int) -> tuple[int, list[int]]:
        """(epoch, clip indices) of micro-batch `micro` of 1-based optimizer step `step` on this process."""
        per_epoch = self.steps_per_epoch * self.gradient_accumulation
        index = (step - 1) * self.gradient_accumulation + micro
        epoch, position = divmod(index, per_epoch)
        order = torch.randperm(self.clips, generator=torch.Generator().manual_seed(self.seed * 7919 + epoch))
        mine = order[self.process_index :: self.processes][: self.clips_per_process]
        return epoch, mine[position * self.batch_size : (position + 1) * self.batch_size].tolist()


def window_start(frames: int, num_frames: int, seed: int, epoch: int, clip: int, choices: int = 0) -> int:
    """First frame of the window a clip trains on this epoch.

    Any contiguous window is possible (`choices` 0), or one of `choices` evenly spaced windows (what the latent
    cache stores). Both draw from the same seeded stream, so they pick the same window when the candidates agree.
    """
    last = frames - num_frames
    if last <= 0:
        return 0
    starts = list(range(last + 1))
    if choices and choices < len(starts):
        starts = window_candidates(frames, num_frames, choices)
    g = torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 65_537 + clip)
    return starts[int(torch.randint(len(starts), (1,), generator=g))]


def window_candidates(frames: int, num_frames: int, choices: int) -> list[int]:
    last = max(frames - num_frames, 0)
    if choices <= 1 or last == 0:
        return [0]
    return sorted({round(i * last / (choices - 1)) for i in range(choices)})


def step_generator(seed: int, step: int, process_index: int, micro: int) -> torch.Generator:
    """The noise/timestep/dropout stream of one micro-batch: independent of how the run got to this step."""
    return torch.Generator().manual_seed(((seed * 1_000_003 + step) * 131 + process_index) * 17 + micro)
