"""Who uses the device now: the one owner of the GPU (or, on a CPU, of what shares the cores) in the studio.

Four kinds of work want it: a training run (started by the run queue), a generation (the generation worker), an
evaluation and captioning (each a child process). They ask here, and nowhere else:

- On a GPU one of them uses it at a time. Generations and evaluations wait in one line, first come first
  served (`wait_turn`), or take the device only when it is free now (`take_now`); while they wait, `position`
  is their true place: the users ahead of them that are served first. A training run is handed the GPU by the
  run queue (`hand_over`) only when nothing holds it and nobody waits. What a kind of work leaves idle on the
  GPU (the generation worker keeps its model loaded) is freed before another kind uses it (`leaves_idle`).
  While a run trains, generations and evaluations are refused, saying so.
- On the CPU generation and evaluation share the cores with training: nothing waits for a run, and only
  work of the same kind waits for its own kind (one worker renders one request, one evaluation child at a time).

`cancel(owner)` takes a waiting request out of the line or stops the running one (the `stop` it was taken
with); `give_back(owner)` ends a use. Gradio-free and torch-free: tested directly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from studio.folders import Refused

Use = Literal["generation", "evaluation", "captioning"]
VERB = {"generation": "generate", "evaluation": "evaluate", "captioning": "write captions"}
# Per kind: what it is doing (while another kind is refused), when that ends, and what a second one of it is told.
DOING = {
    "generation": ("A generation is running", "it finishes"),
    "evaluation": ("An evaluation is running", "it finishes, or cancel it"),
    "captioning": ("Captions are being written", "they finish, or cancel them"),
}
ALREADY = {
    "generation": "A generation is already running; wait for it to finish or cancel it.",
    "evaluation": "An evaluation is already running; wait for it to finish or cancel it.",
    "captioning": "Captions are being written already; wait for them or cancel.",
}
POLL_S = 0.5


class DeviceBusy(Refused):
    """The device is used by other work that this request may not wait for; the message says which."""


class Cancelled(Refused):
    """The request was cancelled while it waited for the device."""


@dataclass
class _Ticket:
    use: Use
    owner: str
    stop: Callable[[], None] | None = None


class Device:
    def __init__(self, jobs: Any = None, gpu: bool = False):
        self.jobs = jobs  # a JobManager (or anything with current()): the training run holding the device
        self.gpu = gpu
        # Per kind of work, how to free what it leaves idle on the GPU (the worker's loaded model): run before
        # another kind (a training run, an evaluation's child) loads its own.
        self.leaves_idle: dict[Use, Callable[[], None]] = {}
        self._cond = threading.Condition()
        self._holders: list[_Ticket] = []
        self._line: list[_Ticket] = []
        self._cancelled: set[str] = set()

    # --- queries ------------------------------------------------------------------------------------
    def training(self) -> str | None:
        """The run training now, by name (it holds a GPU; on the CPU it shares the cores), or None."""
        job = self.jobs.current() if self.jobs is not None else None
        return job.name if job is not None else None

    def holds(self, use: Use) -> bool:
        with self._cond:
            return any(t.use == use for t in self._holders)

    def refusal(self, use: Use) -> str | None:
        """Why `use` cannot even wait for the device now, or None: on a GPU a training run or the other kind of
        work holds it."""
        if not self.gpu:
            return None
        verb = VERB[use]
        run = self.training()
        if run is not None:
            return f"Run {run!r} is training on the GPU; {verb} after it finishes, or stop it first."
        with self._cond:
            other = next((t.use for t in self._holders if t.use != use), None)
        if other is None:
            return None
        doing, until = DOING[other]
        return f"{doing} on the GPU; {verb} after {until}."

    def position(self, owner: str) -> int | None:
        """How many users are served before `owner` (those using the device now included); None when it is not
        waiting."""
        with self._cond:
            ticket = next((t for t in self._line if t.owner == owner), None)
            return None if ticket is None else self._ahead(ticket)

    # --- taking and giving back ---------------------------------------------------------------------
    def take_now(self, use: Use, owner: str, stop: Callable[[], None] | None = None) -> None:
        """Use the device now, or DeviceBusy saying who has it (an evaluation does not wait)."""
        with self._cond:
            why = self.refusal(use)
            if why is None and self.holds(use):
                why = ALREADY[use]
            if why is None and self._ahead(_Ticket(use, owner)):
                why = f"Others wait for the GPU; {VERB[use]} after they finish."
            if why is not None:
                raise DeviceBusy(why)
            self._free_idle(but=use)
            self._holders.append(_Ticket(use, owner, stop))

    def wait_turn(self, use: Use, owner: str, stop: Callable[[], None] | None = None) -> Iterator[int]:
        """Wait in the line; yield the position (`position`) whenever it changes, and return holding the device.

        DeviceBusy when, at any moment of the wait, a training run or the other kind of work holds the GPU
        (a run the queue started meanwhile is not waited for); Cancelled when `cancel(owner)` took it out."""
        ticket = _Ticket(use, owner, stop)
        with self._cond:
            self._line.append(ticket)
        told = None
        try:
            while True:
                with self._cond:
                    if owner in self._cancelled:
                        raise Cancelled(f"The {use} was cancelled before it started.")
                    ahead = self._ahead(ticket)
                    why = self.refusal(use) if ahead == 0 or not self.holds(use) else None
                    if why is not None:
                        raise DeviceBusy(why)
                    if ahead == 0:
                        self._line.remove(ticket)
                        self._holders.append(ticket)
                        return
                    if ahead != told:
                        told = ahead
                    else:
                        self._cond.wait(POLL_S)
                        continue
                yield ahead
        finally:
            with self._cond:
                if ticket in self._line:
                    self._line.remove(ticket)
                if ticket not in self._holders:
                    self._cancelled.discard(owner)
                self._cond.notify_all()

    def give_back(self, owner: str) -> None:
        """End `owner`'s use of the device; the next in line goes."""
        with self._cond:
            self._holders = [t for t in self._holders if t.owner != owner]
            self._cancelled.discard(owner)
            self._cond.notify_all()

    def cancel(self, owner: str, use: Use) -> bool:
        """Take `owner`'s `use` out of the line, or stop it while it runs; True when it had one."""
        with self._cond:
            waiting = any(t.owner == owner and t.use == use for t in self._line)
            running = next((t for t in self._holders if t.owner == owner and t.use == use), None)
            if not waiting and running is None:
                return False
            self._cancelled.add(owner)
            self._cond.notify_all()
        if running is not None and running.stop is not None:
            running.stop()
        return True

    def cancelled(self, owner: str) -> bool:
        with self._cond:
            return owner in self._cancelled

    def hand_over(self, start: Callable[[], Any]) -> Any | None:
        """Start a training run with `start()` when the device may be handed to it, else None (try again later).

        On a GPU: when nothing holds it and nobody waits; what sits idle on it is freed first. The hand-over
        holds the line, so no generation or evaluation slips in between the check and the run's start."""
        with self._cond:
            if self.gpu:
                if self._holders or self._line:
                    return None
                self._free_idle(but=None)
            return start()

    def free_for_training(self) -> bool:
        """Whether a run may be started now (`hand_over` would start it)."""
        with self._cond:
            return not self.gpu or not (self._holders or self._line)

    # --- the line -----------------------------------------------------------------------------------
    def _free_idle(self, but: Use | None) -> None:
        if self.gpu:
            for use, free in self.leaves_idle.items():
                if use != but:
                    free()

    def _conflicts(self, a: _Ticket, b: _Ticket) -> bool:
        return self.gpu or a.use == b.use  # on the CPU generation and evaluation share the cores

    def _ahead(self, ticket: _Ticket) -> int:
        holders = sum(1 for t in self._holders if t is not ticket and self._conflicts(t, ticket))
        index = self._line.index(ticket) if ticket in self._line else len(self._line)
        return holders + sum(1 for t in self._line[:index] if self._conflicts(t, ticket))
