"""How the studio starts every child process (training, the generation worker, import-data): one way, here.

- an argument list, never a shell, with `--` before positional values so that no value a request carries
  (a folder name, a Hub id) can be read as an option;
- the environment: the repository on PYTHONPATH (the child imports `trainer` from this checkout),
  PYTHONUNBUFFERED (so its log is current when a crash is reported) and, on a machine without a GPU, one torch
  thread fewer than the cores (cpu_threads) unless OMP_NUM_THREADS is set;
- its own process group (start_new_session), so a stop or kill reaches the launcher and everything under it
  and never the studio;
- its stderr appended to a log file that starts with a dated line of the command.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from studio import child_processes
from trainer.spec.machine import cuda_visible

REPO_ROOT = Path(__file__).resolve().parents[1]


def child_env() -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
    if "OMP_NUM_THREADS" not in env and not cuda_visible():
        env["OMP_NUM_THREADS"] = str(cpu_threads())
    return env


def cpu_threads(cores: int | None = None) -> int:
    """Torch threads for a child that computes on the CPU: every core but one, which the studio and the browser
    need every second. Measured on 2 cores, the CPU preset from the Train tab with the page open: 406 s with
    torch's default of 2 threads (they wait on each other while the page redraws), 142 s with 1 from the CLI."""
    return max(1, (cores or os.cpu_count() or 1) - 1)


def trainer_command(command: str, options: list[str] = (), positional: list[str] = ()) -> list[str]:
    """`python -m trainer COMMAND OPTIONS -- POSITIONAL`: a positional value starting with '-' stays a value."""
    return [sys.executable, "-m", "trainer", command, *options, *(["--", *positional] if positional else [])]


def trainer_argv(config_path: Path) -> list[str]:
    """The real trainer command: one process under accelerate, on the CPU when no GPU is visible."""
    cpu = [] if cuda_visible() else ["--cpu"]
    # --quiet: without it a failed trainer's own traceback is followed by the launcher's, which then fills the
    # end of process.log that a crash report quotes. A free rendezvous port per run: two runs on the default port
    # (another user's, a command-line run) wait on each other forever.
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--num_processes",
        "1",
        *cpu,
        "--quiet",
        "--main_process_port",
        str(free_port()),
        "-m",
        "trainer",
        "train",
        "--config",
        str(config_path),
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _log_header(log: IO[bytes], argv: list[str]) -> None:
    log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n".encode())
    log.flush()


def spawn(argv: list[str], cwd: Path, log_path: Path, pipes: bool = False) -> subprocess.Popen:
    """Start `argv` in its own process group. Its output goes to `log_path`; with `pipes`, stdin and stdout
    are text pipes (a worker's protocol) and only stderr goes to the log. OSError when it cannot start."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        _log_header(log, argv)
        if pipes:
            return subprocess.Popen(
                argv,
                cwd=cwd,
                env=child_env(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                bufsize=1,
                start_new_session=True,
            )
        return subprocess.Popen(
            argv,
            cwd=cwd,
            env=child_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def run(argv: list[str], cwd: Path, log_path: Path, timeout: float) -> subprocess.CompletedProcess:
    """Run `argv` to its end and return its stdout (a machine-readable answer); its stderr goes to `log_path`.

    On the timeout its whole process group is killed and subprocess.TimeoutExpired raised."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        _log_header(log, argv)
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=child_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            child_processes.stop(process, grace=0)  # past its time: its whole group, at once
            process.communicate()
            raise
    return subprocess.CompletedProcess(argv, process.returncode, stdout, "")
