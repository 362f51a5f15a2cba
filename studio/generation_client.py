"""Generation without Gradio: the client of the long-lived `python -m trainer.worker` process.

The studio never loads a model itself. The worker (started on the first request, in its own session) keeps
the pipeline and adapters loaded between requests; this client sends one JSON request per line and turns
the worker's answer lines into events. One request runs at a time: a second one waits its turn (on the
CPU) or is refused while a training run holds the GPU.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

from studio.jobs import JobManager, cuda_visible, last_lines

REPO_ROOT = Path(__file__).resolve().parents[1]
GENERATIONS_DIR = "generations"
WORKER_LOG = "worker.log"
STOP_GRACE_S = 5.0


class GenerationError(RuntimeError):
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


def worker_argv() -> list[str]:
    return [sys.executable, "-m", "trainer.worker"]


class _Worker:
    """One worker process and a thread that moves its stdout lines into a queue (None marks its end)."""

    def __init__(self, argv: list[str], cwd: Path, log_path: Path):
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            stderr=log, text=True, bufsize=1, start_new_session=True)  # fmt: skip
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

    def stop(self) -> None:
        """Close its stdin (it exits after the current request), then signal its group if it lingers."""
        try:
            self.process.stdin.close()
        except OSError:
            pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                self.process.wait(STOP_GRACE_S)
                return
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.process.pid, sig)  # its own group: start_new_session
                except ProcessLookupError:
                    return
        self.process.wait(STOP_GRACE_S)


class GenerationClient:
    def __init__(self, workspace: str | Path, jobs: JobManager | None = None, gpu: bool | None = None,
                 argv: Callable[[], list[str]] = worker_argv):  # fmt: skip
        self.workspace = Path(workspace).resolve()
        self.out_root = self.workspace / GENERATIONS_DIR
        self.log_path = self.out_root / WORKER_LOG
        self.jobs = jobs
        self.gpu = cuda_visible() if gpu is None else gpu
        self.argv = argv
        self._lock = threading.Lock()  # one request at a time; others wait for it
        self._state = threading.Lock()  # guards _worker
        self._worker: _Worker | None = None

    # --- queries ------------------------------------------------------------------------------------
    def refusal(self) -> str | None:
        """Why a generation cannot start now, or None. On the CPU it shares the cores with training instead."""
        if not self.gpu or self.jobs is None:
            return None
        job = self.jobs.current()
        if job is None:
            return None
        return f"Run {job.name!r} is training on the GPU; generate after it finishes, or stop it first."

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    def new_out_dir(self) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for n in range(1, 1000):
            path = self.out_root / (stamp if n == 1 else f"{stamp}-{n}")
            try:
                path.mkdir(parents=True)
                return path
            except FileExistsError:
                continue
        raise GenerationError(f"Cannot make a new folder in {self.out_root}; clean up old generations.")

    # --- generation ---------------------------------------------------------------------------------
    def generate(self, request: dict[str, Any], timeout: float | None = None) -> Iterator[dict[str, Any]]:
        """Send one request; yield events: queued, starting, progress..., then done (with the compare record).

        Raises GenerationBusy while training holds the GPU, GenerationError when the worker reports an error,
        dies (it is restarted on the next request) or says nothing for `timeout` seconds.
        """
        why = self.refusal()
        if why:
            raise GenerationBusy(why)
        request = dict(request)
        request.setdefault("out_dir", str(self.new_out_dir()))
        if self._lock.locked():
            yield {"event": "queued"}
        with self._lock:
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
            yield from self._answers(worker, request_id, timeout)

    def _answers(self, worker: _Worker, request_id: str, timeout: float | None) -> Iterator[dict[str, Any]]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
            try:
                line = worker.lines.get(timeout=wait)
            except queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    self._discard(worker)
                    raise GenerationError(f"The generation worker gave no answer in {timeout:g} s and was stopped; "
                                          "try again (it restarts), with fewer steps or frames.") from None  # fmt: skip
                continue
            if line is None:
                self._discard(worker)
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
            raise GenerationError(f"The generation worker could not be started ({exc.strerror}: {argv[0]}); "
                                  "check the Python environment.") from None  # fmt: skip
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
        return (f"The generation worker exited (code {code}){why}; it restarts on the next request, "
                f"and {self.log_path} has its full log.")  # fmt: skip
