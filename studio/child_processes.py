"""The studio's child processes (training runs, the generation worker, evaluations, imports) as the operating
system sees them: whether a pid is still a live trainer, how to signal the process group a child leads, and the
end of its log. Each child is started in its own session, so a signal reaches it and everything under it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any


def process_alive(pid: int) -> bool:
    """Whether `pid` is a live trainer process (not a zombie, not an unrelated process that reused the pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists but belongs to another user
    proc = Path(f"/proc/{pid}")
    if not Path("/proc/self").exists():
        return True  # no /proc (macOS): os.kill is all we can know
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = (proc / "cmdline").read_bytes()
    except (OSError, IndexError):
        return False  # it exited between the two checks
    # Both the accelerate launcher and the trainer itself have "trainer" in their arguments.
    return state != "Z" and b"trainer" in cmdline


def last_lines(path: Path, count: int) -> list[str]:
    """The last `count` non-empty lines of a text file ([] when it does not exist); reads only its end."""
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - 64 * 1024))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-count:]


def signal_group(pid: int, group: int, sig: signal.Signals) -> None:
    """Send `sig` to the process group `group` that `pid` belongs to; to `pid` alone when that group is the
    studio's own (a trainer started from the studio's shell): never signal the studio itself."""
    try:
        if group == os.getpgrp():
            os.kill(pid, sig)
        else:
            os.killpg(group, sig)
    except ProcessLookupError:
        pass  # it already ended


def stop(process: subprocess.Popen, grace: float, ask: Callable[[], None] | None = None) -> int:
    """The one way the studio ends a child it started: ask it to end (`ask`, else SIGTERM to its process group),
    wait up to `grace` seconds, then SIGKILL the group; returns its exit code once it is reaped."""
    if process.poll() is None:
        try:
            if ask is not None:
                ask()
            else:
                signal_group(process.pid, process.pid, signal.SIGTERM)
        except OSError:
            pass  # its stdin is already closed, or it is gone
        try:
            return process.wait(grace)
        except subprocess.TimeoutExpired:
            signal_group(process.pid, process.pid, signal.SIGKILL)
    return process.wait()


def event_line(line: str) -> dict[str, Any] | None:
    """One JSON-lines event a child printed (`--events`), or None for any other line (a warning, a progress bar)."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) and "event" in event else None
