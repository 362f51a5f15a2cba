"""One training run at a time, as a child process the studio starts, stops, resumes and re-attaches to.

The studio never imports torch or training code: a run is `accelerate launch -m trainer train --config
<run>/config.json` in its own process group, and all the studio knows about it comes from its run folder
(trainer.spec.run_folder) and its exit code. Relative paths in a config (output_dir, data) mean paths in the workspace:
the child runs with the workspace as its working directory. The dataset and model a config names pass the
studio's path policy (studio.paths) before anything is written or launched.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from studio import launcher as launching
from studio.child_processes import last_lines, process_alive, signal_group
from studio.folders import Refused, Workspace
from studio.launcher import trainer_argv  # noqa: F401 (trainer_argv: the default launcher)
from studio.paths import PathPolicy, as_workspace, check_name
from studio.run_files import config_problem, status_problem
from trainer.spec.config import ConfigError, Problem, TrainConfig, load_config, save_config
from trainer.spec.machine import Machine, config_problems_on
from trainer.spec.run_folder import (
    CONFIG_FILE,
    LOG_FILE,
    PROCESS_LOG,
    RUNS_DIR,
    RunState,
    Status,
    latest_checkpoint_step,
    read_status,
    write_status,
)

ERROR_LOG_LINES = 10
Launcher = Callable[[Path], list[str]]


class JobError(Refused):
    """A request the job manager cannot carry out; the message names the run and what to do."""


class JobBusy(JobError):
    """A run is already training; only one runs at a time."""


class NoCheckpoint(JobError):
    """Resume asked of a run that has no complete checkpoint: it can only start over, which the user confirms."""


@dataclass
class Job:
    """The run being trained. `process` is None when re-attached after a studio restart (not our child)."""

    name: str
    run_dir: Path
    process: subprocess.Popen | None = None
    stop_requested: bool = False
    killed: bool = False

    @property
    def exit_code(self) -> int | None:
        # The launcher's code: under accelerate that is 1 for any trainer failure and -15 after a stop, which is
        # why status.json, not this, says how a run ended.
        return None if self.process is None else self.process.poll()

    def is_alive(self) -> bool:
        # The launcher may be gone while the trainer still finishes its step and checkpoints (SIGTERM reaches
        # both; accelerate's launcher dies at once), so the trainer's own pid in status.json counts too.
        if self.process is not None and self.process.poll() is None:
            return True
        status = read_status(self.run_dir)
        return bool(status and status.state is RunState.RUNNING and status.pid and process_alive(status.pid))

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the run to end; True when it has."""
        deadline = time.monotonic() + timeout
        while self.is_alive():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True


@dataclass(frozen=True)
class RunInfo:
    name: str
    run_dir: Path
    state: RunState | None  # None: no readable status.json
    step: int
    total: int
    pid: int | None
    exit_code: int | None  # the launcher's, known only for runs a studio process launched (status.json keeps it)
    error: str | None
    last_log_lines: list[str]
    active: bool  # the run currently training
    updated: float


def _unreported_end_message(exit_code: int | None) -> str:
    if exit_code is None:  # a re-attached run: not our child, so its exit code was never ours to read
        return "the training process ended without reporting (exit code unknown)"
    return f"the training process exited with code {exit_code} without reporting"


class JobManager:
    """Starts, stops, resumes and lists the runs of one workspace (`<workspace>/runs/<name>/`)."""

    def __init__(self, workspace: Workspace | str | Path, launcher: Launcher | None = None):
        self.ws = as_workspace(workspace)
        self.workspace = self.ws.root
        self.runs_dir = self.ws.runs
        self.paths = PathPolicy(self.ws)
        self.launcher = launcher or trainer_argv
        self._lock = threading.RLock()  # Gradio calls handlers from several threads
        self._job: Job | None = None
        with self._lock:
            self._refresh()

    # --- queries ------------------------------------------------------------------------------------
    def current(self) -> Job | None:
        with self._lock:
            self._refresh()
            return self._job

    def runs(self) -> list[RunInfo]:
        """Every run on disk, most recently updated first."""
        with self._lock:
            self._refresh()
            infos = [self._info(run_dir) for run_dir in self._run_dirs()]
        return sorted(infos, key=lambda info: info.updated, reverse=True)

    def log_tail(self, name: str, lines: int = 40) -> str:
        run_dir = self._existing_run_dir(name)
        return "\n".join(self._log_lines(run_dir, lines))

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds until no run is training; True when none is."""
        deadline = time.monotonic() + timeout
        while self.current() is not None:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    # --- commands -----------------------------------------------------------------------------------
    def start(self, config: TrainConfig, resume: bool = False) -> Job:
        """Write `<run>/config.json` and launch the trainer; `resume` continues an existing run from "latest"."""
        with self._lock:
            self._refresh()
            if self._job is not None:
                raise JobBusy(self._busy_message())
            config = self.write_config(config, resume)
            self._job = Job(config.name, config.run_dir, self._launch(config.run_dir))
            return self._job

    def write_config(self, config: TrainConfig, resume: bool = False) -> TrainConfig:
        """Check `config` as a new run (`resume`: an existing one), write its config.json and return it as written."""
        self.ws.require_writable("training")
        self.ws.require_room("training")
        config = self._pin_to_workspace(config)
        problems = config_problems_on(config, Machine.visible())  # as the trainer will judge it
        if problems:
            raise ConfigError(problems, f"run {config.name!r}")
        self.paths.dataset(config.data)  # before anything is written: the trainer will read it
        self.paths.model(config.model, config.revision)
        self.ws.access.check_samples(config.model, config.sample_every)
        run_dir, where = config.run_dir, f"Run {config.name!r} in {RUNS_DIR}/"
        exists = (run_dir / CONFIG_FILE).exists()
        if exists and not resume:
            raise JobError(f"{where} already exists; choose another name or resume it.")
        if resume and not exists:
            raise JobError(f"{where} does not exist; start it before resuming it.")
        save_config(config, run_dir / CONFIG_FILE)
        return config

    def resume(self, name: str, start_over: bool = False) -> Job:
        """Re-launch a stopped or failed run from its latest checkpoint (config.json gets resume: "latest")."""
        with self._lock:
            return self.start(self.resume_config(name, start_over), True)

    def resume_config(self, name: str, start_over: bool = False) -> TrainConfig:
        """The config that resumes run `name` from its latest checkpoint (resume: "latest"; "" to start over).

        Refused, with the reason, for a finished or queued run, one whose status.json or config.json cannot be
        read, or while a run trains; a run without a complete checkpoint raises NoCheckpoint unless `start_over`
        confirms step 0."""
        self.ws.require_writable("resuming runs")
        with self._lock:
            self._refresh()
            run_dir = self._existing_run_dir(name)
            if self._job is not None and self._job.name == name:
                raise JobBusy(self._busy_message())
            problem = status_problem(run_dir) or config_problem(run_dir)
            if problem:
                raise JobError(f"Run {name!r} cannot be resumed: {self.paths.redact(problem)}; start a new run.")
            if (state := read_status(run_dir).state) in (RunState.FINISHED, RunState.QUEUED):
                raise JobError(
                    f"Run {name!r} "
                    + (
                        "already finished; start a new run to train further."
                        if state is RunState.FINISHED
                        else "is queued; it starts when the run before it ends."
                    )
                )
            step = latest_checkpoint_step(run_dir)
            if step is None and not start_over:
                raise NoCheckpoint(
                    f"Run {name!r} has no checkpoint to resume from (it saves one every "
                    f"{load_config(run_dir / CONFIG_FILE).checkpoint_every or 'run end'} steps); "
                    "confirm to start it over from step 0."
                )
            return replace(load_config(run_dir / CONFIG_FILE), resume="" if step is None else "latest")

    def delete(self, name: str, confirm: str) -> None:
        """Delete a run folder (checkpoints, adapter, logs), only when `confirm` repeats its name; never a training run."""
        self.ws.require_writable("deleting runs")
        with self._lock:
            self._refresh()
            run_dir = self._existing_run_dir(name)
            if (confirm or "").strip() != name:
                raise JobError(f"Type the run name {name!r} exactly to confirm deleting it.")
            if self._job is not None and self._job.run_dir == run_dir:
                raise JobError(f"Run {name!r} is training; stop it before deleting it.")
            shutil.rmtree(run_dir)

    def uses_dataset(self, name: str, root: Path) -> bool:
        """Whether run `name`'s config trains on the dataset folder `root`."""
        try:
            data = load_config(self.runs_dir / name / CONFIG_FILE).data
            return self.paths.dataset(data).resolve() == Path(root).resolve()
        except (ConfigError, Refused):
            return False

    def stop(self, name: str) -> None:
        """Ask the run to stop: SIGTERM to its process group; the trainer finishes the step, checkpoints, exits 0."""
        self.ws.require_writable("stopping runs")
        with self._lock:
            job = self._training(name)
            job.stop_requested = True
            self._signal(job, signal.SIGTERM)

    def kill(self, name: str) -> None:
        """End the run at once (SIGKILL): for a trainer that did not stop; work since its last checkpoint is lost."""
        self.ws.require_writable("killing runs")
        with self._lock:
            job = self._training(name)
            job.killed = True
            self._signal(job, signal.SIGKILL)

    # --- launching ----------------------------------------------------------------------------------
    def _pin_to_workspace(self, config: TrainConfig) -> TrainConfig:
        """Runs live in <workspace>/runs so the studio can list them; the child gets that folder as an absolute path."""
        output_dir = Path(config.output_dir).expanduser()
        output_dir = output_dir if output_dir.is_absolute() else self.workspace / output_dir
        if output_dir.resolve() != self.runs_dir.resolve():
            raise ConfigError(
                [
                    Problem(
                        "output_dir", f"the studio keeps runs in its workspace's {RUNS_DIR}/; leave it as {RUNS_DIR!r}"
                    )
                ],
                f"run {config.name!r}",
            )
        return replace(config, output_dir=str(self.runs_dir), sample_prompts=self.paths.sample_frames(config))

    def _launch(self, run_dir: Path) -> subprocess.Popen:
        previous = read_status(run_dir)
        # Say "running" before the child exists, so neither the UI nor a restarted studio sees a gap while the
        # trainer loads (which takes a while); the trainer overwrites this with its own pid once it is up.
        status = Status(RunState.RUNNING)
        if previous is not None:  # a resumed run keeps showing where it was until the trainer reports
            status.step, status.total = previous.step, previous.total
        write_status(run_dir, status)
        argv = self.launcher(run_dir / CONFIG_FILE)
        try:
            process = launching.spawn(argv, self.workspace, run_dir / PROCESS_LOG)
        except OSError as exc:
            message = (
                f"the trainer could not be started ({exc.strerror}: {Path(argv[0]).name}); check the Python environment"
            )
            write_status(run_dir, replace(status, state=RunState.FAILED, error=message))
            raise JobError(f"Run {run_dir.name!r}: {message}.") from None
        # The trainer cannot have written its status yet (it is still starting Python), so this fills in the pid
        # the studio re-attaches to until the trainer writes its own.
        current = read_status(run_dir)
        if current is not None and current.state is RunState.RUNNING and current.pid is None:
            write_status(run_dir, replace(current, pid=process.pid))
        return process

    def _signal(self, job: Job, sig: signal.Signals) -> None:
        if job.process is not None:
            pid = group = job.process.pid  # our child leads its own process group (start_new_session)
        else:
            status = read_status(job.run_dir)
            if status is None or status.pid is None:
                return
            pid = status.pid
            try:
                group = os.getpgid(pid)  # a re-attached run: the group of the pid it reported
            except ProcessLookupError:
                return  # it already ended; the next refresh records how
        signal_group(pid, group, sig)

    # --- watching -----------------------------------------------------------------------------------
    def _refresh(self) -> None:
        """Notice the current run ending, re-attach to a live run, and settle runs whose process is gone."""
        self._reap()
        for run_dir in self._run_dirs():
            if self._job is not None and run_dir == self._job.run_dir:
                continue
            status = read_status(run_dir)
            if status is None or status.state is not RunState.RUNNING:
                continue
            if status.pid is not None and process_alive(status.pid):
                if self._job is None:  # started before this studio process, or from the command line
                    self._job = Job(run_dir.name, run_dir)
            else:
                self._record_unreported_end(Job(run_dir.name, run_dir), status)

    def _reap(self) -> None:
        job = self._job
        if job is None or job.is_alive():
            return
        self._job = None
        status = read_status(job.run_dir)
        if status is None or status.state is RunState.RUNNING:
            self._record_unreported_end(job, status)
        elif job.exit_code is not None:  # the trainer reported how it ended; the exit code completes the record
            write_status(job.run_dir, replace(status, exit_code=job.exit_code))

    def _record_unreported_end(self, job: Job, status: Status | None) -> None:
        """The process is gone but status.json still says running: the trainer died without reporting."""
        status = status or Status(RunState.RUNNING)
        state, error = RunState.FAILED, _unreported_end_message(job.exit_code)
        if job.killed:
            error = f"the run was killed from the studio at step {status.step}; resume it from its last checkpoint"
        elif job.stop_requested:  # SIGTERM arrived before the trainer installed its handler (still loading)
            state = RunState.STOPPED
            error = "the trainer ended on the stop request before it could report; resume it from its last checkpoint"
        tail = self._log_lines(job.run_dir, ERROR_LOG_LINES)
        if tail and not job.killed:
            error += "; the end of its log:\n" + "\n".join(tail)
        write_status(job.run_dir, replace(status, state=state, error=error, exit_code=job.exit_code))

    # --- helpers ------------------------------------------------------------------------------------
    def _run_dirs(self) -> list[Path]:
        return sorted(path.parent for path in self.runs_dir.glob(f"*/{CONFIG_FILE}"))

    def _existing_run_dir(self, name: str) -> Path:
        run_dir = self.runs_dir / check_name(name, "run")
        if not (run_dir / CONFIG_FILE).is_file() or run_dir.resolve().parent != self.runs_dir.resolve():
            raise JobError(f"No run named {name!r} in {RUNS_DIR}/; pick one from the runs list.")
        return run_dir

    def _training(self, name: str) -> Job:
        self._refresh()
        if self._job is None or self._job.name != name:
            raise JobError(f"Run {name!r} is not training, so there is nothing to stop.")
        return self._job

    def _busy_message(self) -> str:
        status = read_status(self._job.run_dir)
        where = f"step {status.step}/{status.total}" if status and status.total else "starting"
        return f"Run {self._job.name!r} is training ({where}); stop it first."

    def _log_lines(self, run_dir: Path, count: int) -> list[str]:
        # process.log holds everything the child printed (tracebacks included); train.log is the fallback.
        return last_lines(run_dir / PROCESS_LOG, count) or last_lines(run_dir / LOG_FILE, count)

    def _info(self, run_dir: Path) -> RunInfo:
        status = read_status(run_dir)
        return RunInfo(
            name=run_dir.name,
            run_dir=run_dir,
            state=status.state if status else None,
            step=status.step if status else 0,
            total=status.total if status else 0,
            pid=status.pid if status else None,
            exit_code=status.exit_code if status else None,
            error=status.error if status else None,
            last_log_lines=self._log_lines(run_dir, 5),
            active=self._job is not None and self._job.run_dir == run_dir,
            updated=status.updated if status else (run_dir / CONFIG_FILE).stat().st_mtime,
        )
