"""Generation without Gradio: the client of the long-lived `python -m trainer.worker` process.

The studio never loads a model itself. The worker (started on the first request, in its own session) keeps
the pipeline and adapters loaded between requests; this client sends one JSON request per line and turns
the worker's answer lines into events. One request runs at a time: a later one waits its turn, told its
place in the line (on the CPU), or is refused while a training run holds the GPU. A request has a time limit
and can be cancelled by whoever sent it; both stop the worker, which restarts for the next request.
"""

from __future__ import annotations

import json
import queue
import secrets
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

from studio import child_processes, launcher
from studio.child_processes import last_lines
from studio.device import Cancelled, Device, DeviceBusy
from studio.folders import Refused, Workspace
from studio.jobs import JobManager
from studio.paths import as_workspace
from trainer.spec.bounds import MAX_TEXT
from trainer.spec.config import Problem
from trainer.spec.generate_settings import SETTING_NAMES, GenerateSettings, type_problems
from trainer.spec.machine import cuda_visible

WORKER_LOG = "worker.log"
STOP_GRACE_S = 5.0
DEFAULT_TIMEOUT_S = 1800.0  # a generation longer than this is stopped (--generation-timeout)


class GenerationError(Refused):
    """A generation that failed or could not start; the message is one sentence for the user."""


class GenerationBusy(GenerationError):
    """A training run holds the GPU."""


def base_model_mismatch(model: str, adapters: list[tuple[str, str | None]]) -> str | None:
    """Why these (name, base model from its card) adapters cannot be compared on `model`, or None.

    An adapter without a card is let through: its weights may still fit, and the worker says so if not.
    """
    wrong = [(name, base) for name, base in adapters if base and base != model]
    if not wrong:
        return None
    name, base = wrong[0]
    return f"Adapter {name!r} was trained on {base!r}, not {model!r}; set the model to {base!r} or leave it out."


def settings_problems(values: dict[str, Any], conditional_latent_frames: int) -> list[Problem]:
    """What the worker would refuse in these generation settings (the same GenerateSettings checks), by field;
    text longer than MAX_TEXT too (an evaluation passes the settings on its child's command line)."""
    problems = type_problems(values) or [
        Problem(name, f"at most {MAX_TEXT} characters (got {len(values[name])}); shorten it")
        for name in SETTING_NAMES
        if isinstance(values.get(name), str) and len(values[name]) > MAX_TEXT
    ]
    if problems:
        return problems
    return GenerateSettings(**{n: values[n] for n in SETTING_NAMES if n in values}).problems(conditional_latent_frames)


def kept_if_done(events: Iterator[dict[str, Any]], out_dir: Path) -> Iterator[dict[str, Any]]:
    """`events`, removing `out_dir` unless one is "done": a refused, failed or cancelled request leaves nothing."""
    done = False
    try:
        for event in events:
            done = done or event.get("event") == "done"
            yield event
    finally:
        if not done:
            shutil.rmtree(out_dir, ignore_errors=True)


def worker_argv() -> list[str]:
    return [sys.executable, "-m", "trainer.worker"]


class _Worker:
    """One worker process and a thread that moves its stdout lines into a queue (None marks its end)."""

    def __init__(self, argv: list[str], cwd: Path, log_path: Path):
        self.process = launcher.spawn(argv, cwd, log_path, pipes=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True, name="generation-worker-stdout").start()

    def _pump(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def alive(self) -> bool:
        return self.process.poll() is None

    def send(self, payload: dict[str, Any]) -> None:
        self.process.stdin.write(json.dumps(payload) + "\n")
        self.process.stdin.flush()

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        """Ask it to end by closing its stdin (it exits after the current request), then kill its group."""
        child_processes.stop(self.process, grace, ask=self.process.stdin.close)


class GenerationClient:
    def __init__(
        self,
        workspace: Workspace | str | Path,
        jobs: JobManager | None = None,
        gpu: bool | None = None,
        argv: Callable[[], list[str]] = worker_argv,
        timeout: float = DEFAULT_TIMEOUT_S,
        device: Device | None = None,
    ):
        self.ws = as_workspace(workspace)
        self.workspace = self.ws.root
        self.out_root = self.ws.generations
        self.log_path = self.out_root / WORKER_LOG
        self.jobs = jobs
        self.gpu = cuda_visible() if gpu is None else gpu
        self.argv = argv
        self.timeout = timeout
        # Who renders now and who waits: the studio's one owner of the device (one request at a time here).
        self.device = device or Device(jobs, self.gpu)
        self.device.leaves_idle["generation"] = self.close  # the worker's model leaves the GPU for a run
        self._state = threading.Lock()  # guards _worker
        self._worker: _Worker | None = None

    # --- queries ------------------------------------------------------------------------------------
    def refusal(self) -> str | None:
        """Why a generation cannot start now, or None. On the CPU it shares the cores with training instead."""
        return self.device.refusal("generation")

    @property
    def busy(self) -> bool:
        return self.device.holds("generation")

    def new_out_dir(self) -> Path:
        """A new generations/<time>-<random> folder: the file route serves it to whoever knows its name, so the
        name cannot be guessed (64 random bits); only the request that made it is told."""
        for _ in range(3):
            path = self.out_root / f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(8)}"
            try:
                path.mkdir(parents=True)
                return path
            except FileExistsError:
                continue
        raise GenerationError("Cannot make a new folder in generations/; clean up old generations.")

    # --- generation ---------------------------------------------------------------------------------
    def generate(
        self, request: dict[str, Any], timeout: float | None = None, owner: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Send one request; yield events: queued (with its position), starting, progress..., then done.

        Raises GenerationBusy while training holds the GPU, GenerationError when the worker reports an error,
        dies (it is restarted on the next request), the request takes longer than `timeout` seconds (default:
        the client's), or `owner` cancels it.
        """
        why = self.refusal()
        if why:
            raise GenerationBusy(why)
        self.ws.require_room("generating")
        owner = owner or uuid.uuid4().hex
        request = dict(request)
        if request.get("out_dir"):
            yield from self._render(request, timeout, owner)
        else:
            request["out_dir"] = str(self.new_out_dir())
            yield from kept_if_done(self._render(request, timeout, owner), Path(request["out_dir"]))

    def _render(self, request: dict[str, Any], timeout: float | None, owner: str) -> Iterator[dict[str, Any]]:
        try:  # at its turn the device is asked again: the run queue may have given the GPU to a run meanwhile
            for ahead in self.device.wait_turn("generation", owner, stop=self._stop_rendering):
                yield {"event": "queued", "position": ahead}
        except DeviceBusy as exc:
            raise GenerationBusy(str(exc)) from None
        except Cancelled:
            raise GenerationError("The generation was cancelled before it started.") from None
        try:
            worker = self._worker_for_request()
            if worker is None:
                yield {"event": "starting"}
                worker = self._start_worker()
            request_id = uuid.uuid4().hex
            try:
                worker.send({**request, "id": request_id})
            except OSError:
                self._discard(worker)
                raise GenerationError(self._death_message(worker)) from None
            yield from self._answers(worker, request_id, self.timeout if timeout is None else timeout, owner)
        finally:
            self.device.give_back(owner)

    def cancel(self, owner: str) -> bool:
        """Cancel `owner`'s request: a queued one leaves the line, a running one stops the worker. True if any."""
        return self.device.cancel(owner, "generation")

    def _stop_rendering(self) -> None:
        with self._state:
            worker = self._worker
        if worker is not None:
            worker.stop(grace=0.5)

    def _answers(self, worker: _Worker, request_id: str, timeout: float | None, owner: str) -> Iterator[dict[str, Any]]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
            try:
                line = worker.lines.get(timeout=wait)
            except queue.Empty:
                if self.device.cancelled(owner):  # cancelled while the worker was still starting: stop it now
                    self._discard(worker)
                    raise GenerationError(
                        "The generation was cancelled; the worker restarts on the next request."
                    ) from None
                if deadline is not None and time.monotonic() >= deadline:
                    self._discard(worker)
                    raise GenerationError(
                        f"The generation took longer than its limit of {timeout:g} s and was "
                        "stopped; try again with fewer steps or frames."
                    ) from None
                continue
            if line is None:
                self._discard(worker)
                if self.device.cancelled(owner):
                    raise GenerationError("The generation was cancelled; the worker restarts on the next request.")
                raise GenerationError(self._death_message(worker))
            try:
                event = json.loads(line)
            except ValueError:
                continue  # not a protocol line
            if not isinstance(event, dict) or event.get("id") != request_id:
                continue  # an answer to an earlier request whose caller went away
            kind = event.get("event")
            if kind == "progress":
                yield event
            elif kind == "done":
                yield event
                return
            elif kind == "error":
                raise GenerationError(str(event.get("message") or "the generation failed; see the worker log"))

    def close(self) -> None:
        """Stop the worker (frees the model's memory); the next request starts a new one."""
        with self._state:
            worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop()

    # --- worker lifecycle ---------------------------------------------------------------------------
    def _worker_for_request(self) -> _Worker | None:
        with self._state:
            if self._worker is not None and not self._worker.alive():
                self._worker = None  # it died between requests: a new one starts
            return self._worker

    def _start_worker(self) -> _Worker:
        argv = self.argv()
        try:
            worker = _Worker(argv, self.workspace, self.log_path)
        except OSError as exc:
            raise GenerationError(
                f"The generation worker could not be started ({exc.strerror}: {argv[0]}); check the Python environment."
            ) from None
        with self._state:
            self._worker = worker
        return worker

    def _discard(self, worker: _Worker) -> None:
        with self._state:
            if self._worker is worker:
                self._worker = None
        worker.stop()

    def _death_message(self, worker: _Worker) -> str:
        code = worker.process.poll()
        tail = last_lines(self.log_path, 1)
        why = f": {tail[-1].strip()}" if tail else ""
        return (
            f"The generation worker exited (code {code}){why}; it restarts on the next request, "
            f"and generations/{WORKER_LOG} has its full log."
        )
