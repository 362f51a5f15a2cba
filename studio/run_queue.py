"""The training queue: a Start while a run trains queues the new run; queued runs start one at a time, in order.

The queue is nothing but run folders, so a studio restart finds it again: a queued run is `config.json` (checked
like any run's before it is written) and `status.json` with state `queued` and the time it joined the queue
(`queued_at`, the queue's order; the name breaks ties). A watcher thread starts the first queued run whenever
no run is training: one run at a time, on a GPU and on the CPU alike (two trainings on 2 CPU cores are each
slower than one after the other). Resume queues like Start. On a GPU a run is started only when the
studio's one owner of the device (studio.device) hands it over: no generation or evaluation holds or waits for it.

Cancel never deletes what a user made: the queued run becomes `cancelled` and keeps its config.json, so it can
be cloned into the form and queued again, or deleted from the runs list like any run. A queued run that can no
longer start (its dataset was deleted meanwhile) becomes `failed` with the reason, and the next one starts; a
full workspace (--max-workspace-gb) only holds the queue, the reason shown on the waiting run.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Callable

from studio.device import Device
from studio.folders import QuotaError, Refused
from studio.jobs import JobBusy, JobError, JobManager
from studio.paths import check_name
from trainer.spec.config import ConfigError, TrainConfig, load_config
from trainer.spec.run_folder import CONFIG_FILE, RunState, Status, read_status, write_status

MAX_QUEUED = 8  # a caller of the API cannot fill the disk with waiting runs
WATCH_SECONDS = 1.0
log = logging.getLogger(__name__)


class QueueFull(JobError):
    """The queue already holds MAX_QUEUED runs."""


@dataclass(frozen=True)
class Submitted:
    name: str
    position: int  # 0: started at once; n: n-th in the queue


class RunQueue:
    """Starts a run at once when none trains, else queues it; `pump` (the watcher) starts the next in line."""

    def __init__(self, jobs: JobManager, device: Device | None = None, limit: int = MAX_QUEUED):
        self.jobs = jobs
        self.device = device or Device(jobs)  # who may use the GPU now; a run is handed it (studio.device)
        self.limit = limit
        self._lock = threading.RLock()  # submit, pump and cancel each see the queue as the others left it
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    # --- queries ------------------------------------------------------------------------------------
    def queued(self) -> list[str]:
        """The queued runs' names, first in line first."""
        waiting = []
        for config_path in self.jobs.runs_dir.glob(f"*/{CONFIG_FILE}"):
            status = read_status(config_path.parent)
            if status is not None and status.state is RunState.QUEUED:
                waiting.append((status.queued_at or status.updated, config_path.parent.name))
        return [name for _, name in sorted(waiting)]

    def note(self, name: str | None) -> str:
        """What the queue means for run `name`, for its headline: its place in line, or how many wait after it."""
        waiting = self.queued()
        if name in waiting:
            return f"position {waiting.index(name) + 1} of {len(waiting)} in the queue"
        job = self.jobs.current()
        if waiting and job is not None and job.name == name:
            return f"{len(waiting)} queued after it"
        return ""

    # --- commands -----------------------------------------------------------------------------------
    def submit(self, config: TrainConfig) -> Submitted:
        """Start `config` as a new run now when nothing trains and nothing waits, else queue it (checked the same
        way, its folder written). QueueFull when MAX_QUEUED runs wait already."""
        self.jobs.ws.require_writable("training")
        with self._lock:
            started = self._start_now(lambda: self.jobs.start(config))
            if started is not None:
                return Submitted(started.name, 0)
            return self._enqueue(partial(self.jobs.write_config, config))

    def resume(self, name: str, start_over: bool = False) -> Submitted:
        """Resume run `name` from its latest checkpoint (or start it over) like Start: now when nothing trains,
        nothing waits and the device is free, else it joins the queue (JobManager.resume_config says what
        cannot be resumed)."""
        self.jobs.ws.require_writable("resuming runs")
        with self._lock:
            config = self.jobs.resume_config(name, start_over)
            started = self._start_now(lambda: self.jobs.start(config, resume=True))
            if started is not None:
                return Submitted(started.name, 0)
            return self._enqueue(partial(self.jobs.write_config, config, resume=True))

    def _start_now(self, start: Callable[[], Any]) -> Any | None:
        """`start()` when nothing trains or waits and the device is handed over, else None (the run queues)."""
        if self.queued() or self.jobs.current() is not None:
            return None
        try:
            return self.device.hand_over(start)
        except JobBusy:  # a command-line run got there first: queue behind it
            return None

    def _enqueue(self, write: Callable[[], TrainConfig]) -> Submitted:
        """Queue the run whose config.json `write()` checks and writes; QueueFull when MAX_QUEUED runs wait."""
        waiting = self.queued()
        if len(waiting) >= self.limit:
            raise QueueFull(
                f"The queue already holds {len(waiting)} runs, the most it takes; wait for one to "
                "start or cancel one, then start this run again."
            )
        config = write()
        write_status(config.run_dir, Status(RunState.QUEUED, queued_at=time.time()))
        return Submitted(config.name, len(waiting) + 1)

    def cancel(self, name: str) -> None:
        """Take a queued run out of the queue: it becomes `cancelled`, its folder and config.json stay."""
        self.jobs.ws.require_writable("cancelling runs")
        with self._lock:
            run_dir = self.jobs.runs_dir / check_name(name, "run")
            status = read_status(run_dir)
            if status is None or status.state is not RunState.QUEUED:
                state = status.state.value if status else "not a run"
                hint = "; stop it instead" if status and status.state is RunState.RUNNING else ""
                raise JobError(f"Run {name!r} is not queued ({state}), so there is nothing to cancel{hint}.")
            write_status(run_dir, Status(RunState.CANCELLED, queued_at=status.queued_at))

    def pump(self) -> str | None:
        """Start the first queued run when no run trains and the device is free; the name started, or None."""
        with self._lock:
            waiting = self.queued()
            if not waiting or self.jobs.current() is not None or not self.device.free_for_training():
                return None
            for name in waiting:
                run_dir = self.jobs.runs_dir / name
                try:
                    config = load_config(run_dir / CONFIG_FILE)
                    if self.device.hand_over(partial(self.jobs.start, config, resume=True)) is None:
                        return None  # a generation or evaluation took the GPU meanwhile
                    return name
                except JobBusy:  # a Resume or a command-line run got there first: wait for it
                    return None
                except QuotaError as exc:  # passing: this run (and every one behind it) waits until room is made
                    status = read_status(run_dir)
                    if status is not None and status.error != str(exc):
                        write_status(run_dir, replace(status, error=str(exc)))
                    return None
                except ConfigError as exc:
                    reason = "; ".join(str(p) for p in exc.problems)
                except Refused as exc:
                    reason = str(exc)
                error = f"it could not start from the queue: {self.jobs.paths.redact(reason)}"
                write_status(run_dir, Status(RunState.FAILED, error=error))
            return None

    # --- the watcher --------------------------------------------------------------------------------
    def watch(self, interval: float = WATCH_SECONDS) -> None:
        """Pump the queue every `interval` seconds in a daemon thread, so it advances with no page open."""
        if self._watcher is not None:
            return

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.pump()
                except Exception:  # a full disk, a vanished folder: log it and try again on the next beat
                    log.exception("the run queue could not start the next run")

        self._watcher = threading.Thread(target=loop, name="run-queue", daemon=True)
        self._watcher.start()

    def close(self) -> None:
        self._stop.set()
