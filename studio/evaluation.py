"""Evaluation without Gradio: `python -m trainer evaluate --events` in a child process, its answers as events.

The base model and the chosen variants (adapters and `<run>@step-N` checkpoints) are scored on a held-out set;
the child writes the first clip's comparison, with the scores in its compare.json, into a new folder under
generations/, and (unless the studio is read-only) the scores into each variant's card. One evaluation runs at
a time; it has a time limit and can be cancelled by whoever started it (its process group is killed).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

from studio import child_processes, launcher
from studio.adapter_registry import AdapterRegistry
from studio.child_processes import last_lines
from studio.device import DeviceBusy
from studio.folders import Refused
from studio.generation_client import GenerationClient, base_model_mismatch, kept_if_done, settings_problems
from studio.paths import PathPolicy, is_inside
from trainer.spec.bounds import generation_size_problem
from trainer.spec.embedded import is_sample
from trainer.spec.generate_settings import SETTING_NAMES
from trainer.spec.machine import cuda_visible
from trainer.spec.run_folder import COMPARE_RECORD_FILE

EVALUATE_LOG = "evaluate.log"  # under generations/, beside the worker's log
MAX_CLIPS = 48  # an evaluation scores at most this many clips (every endpoint is public)
DEFAULT_TIMEOUT_S = 3600.0
STOP_GRACE_S = 2.0  # a cancelled or timed-out child gets this long to end before its group is killed
HELD_OUT_SAMPLE = "sample:held_out"


class EvaluationError(Refused):
    """An evaluation that could not start or failed; the message is one sentence for the user."""


def evaluate_argv(
    settings: dict[str, Any],
    data: str,
    max_clips: int,
    adapters: list[tuple[str, float]],
    out_dir: Path,
    card: bool,
    checkpoints: bool = False,
) -> list[str]:
    """`python -m trainer evaluate --events ...`; every value in `--option=value` form, so none reads as an option.
    `checkpoints`: score every complete checkpoint of the adapters' runs (--checkpoints=all)."""
    options = ["--events", f"--out={out_dir}", f"--data={data}", f"--max-clips={max_clips}"]
    options += ["--checkpoints=all"] if checkpoints else []
    for name in SETTING_NAMES:
        value = settings[name]
        if isinstance(value, bool):
            options += [] if value else [f"--no-{name}"]
        else:
            options.append(f"--{name.replace('_', '-')}={value}")
    options += [f"--adapter={path}:{scale:g}" for path, scale in adapters]
    return launcher.trainer_command("evaluate", options + (["--card"] if card else []))


class Evaluator:
    def __init__(self, adapters: AdapterRegistry, generation: GenerationClient, timeout: float = DEFAULT_TIMEOUT_S):
        self.registry, self.generation = adapters, generation
        self.ws = adapters.ws
        self.paths = PathPolicy(self.ws)
        self.log_path = self.ws.generations / EVALUATE_LOG
        self.timeout = timeout
        self.device = generation.device  # the studio's one owner of the device: one evaluation at a time
        self._state = threading.Lock()
        self._running: tuple[str, Any] | None = None  # (owner, process) of the evaluation in progress

    @property
    def busy(self) -> bool:
        return self.device.holds("evaluation")

    def check(self, settings: dict[str, Any], variants: list[str], data: str, max_clips: int) -> tuple[list, str]:
        """The chosen variants (AdapterInfo) and the data value the child gets; EvaluationError names what is wrong."""
        problems = settings_problems(settings, 1)
        if problems:
            raise EvaluationError("Fix the settings: " + "; ".join(map(str, problems)) + ".")
        self.paths.model(settings["model"], settings["revision"])
        self.ws.access.check_guardrail(settings["model"], settings["guardrail"])
        too_big = generation_size_problem(settings["height"], settings["width"], settings["num_frames"], cuda_visible())
        if too_big:
            raise EvaluationError(too_big[0].upper() + too_big[1:] + ".")
        if not isinstance(max_clips, int) or not 1 <= max_clips <= MAX_CLIPS:
            raise EvaluationError(f"clips: score 1 to {MAX_CLIPS} held-out clips (got {max_clips!r}).")
        folder = self.paths.dataset(data)
        chosen = [self.registry.variant(name) for name in dict.fromkeys(variants or [])]
        why = base_model_mismatch(settings["model"], [(a.name, a.base_model) for a in chosen])
        if why:
            raise EvaluationError(why)
        if is_sample(data):
            return chosen, data
        # The child runs in the workspace: a dataset there is named relative to it, so the scores saved in
        # compare.json and the cards (and the page's status line) hold no server path.
        return chosen, self.paths.show(folder) if is_inside(folder, self.ws.root) else str(folder)

    def evaluate(
        self,
        settings: dict[str, Any],
        variants: list[str],
        strengths: dict[str, float],
        data: str,
        max_clips: int,
        owner: str | None = None,
        checkpoints: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """Yield the child's progress events, then {"event": "done", "result", "record", "out_dir"}."""
        chosen, data_value = self.check(settings, variants, data, max_clips)
        if checkpoints and not chosen:
            raise EvaluationError("Every checkpoint: pick a run's adapter or checkpoint in the variants first.")
        why = self.device.refusal("evaluation")
        if why:
            raise EvaluationError(why)
        self.ws.require_room("evaluating")
        owner = owner or uuid.uuid4().hex
        try:  # on a GPU the child loads its own pipeline: the worker's idle copy leaves the GPU first
            self.device.take_now("evaluation", owner, stop=partial(self._stop, owner))
        except DeviceBusy as exc:
            raise EvaluationError(str(exc)) from None
        try:
            out_dir = self.generation.new_out_dir()
            argv = evaluate_argv(
                settings,
                data_value,
                max_clips,
                [(str(a.path), strengths.get(a.name, 1.0)) for a in chosen],
                out_dir,
                card=not self.ws.read_only and not checkpoints,
                checkpoints=checkpoints,
            )
            yield from kept_if_done(self._run(argv, owner, out_dir), out_dir)
        finally:
            with self._state:
                self._running = None
            self.device.give_back(owner)

    def _run(self, argv: list[str], owner: str, out_dir: Path) -> Iterator[dict[str, Any]]:
        try:
            process = launcher.spawn(argv, self.ws.root, self.log_path, pipes=True)
        except OSError as exc:
            raise EvaluationError(
                f"The evaluation could not be started ({exc.strerror}); check the Python environment."
            ) from None
        process.stdin.close()
        with self._state:
            self._running = (owner, process)
        timer = threading.Timer(self.timeout, self._end, (process,))
        timer.start()
        try:
            for line in process.stdout:
                event = child_processes.event_line(line)
                if event is None:
                    continue
                if event["event"] == "progress":
                    yield event
                elif event["event"] == "error":
                    raise EvaluationError(self.paths.redact(str(event.get("message"))))
                elif event["event"] == "done":
                    record = json.loads((out_dir / COMPARE_RECORD_FILE).read_text())
                    yield {"event": "done", "result": event["result"], "record": record, "out_dir": str(out_dir)}
                    return
            raise EvaluationError(self._why_ended(process, owner, timer))
        finally:
            timer.cancel()
            if process.poll() is None:
                self._end(process)
            process.wait()
            process.stdout.close()

    def _why_ended(self, process, owner: str, timer: threading.Timer) -> str:
        code = process.wait()
        if self.device.cancelled(owner):
            return "The evaluation was cancelled."
        if timer.finished.is_set() and code < 0:
            return (
                f"The evaluation took longer than its limit of {self.timeout:g} s and was stopped; score fewer clips."
            )
        tail = last_lines(self.log_path, 1)
        why = f": {self.paths.redact(tail[-1].strip())}" if tail else ""
        return f"The evaluation exited (code {code}){why}; generations/{EVALUATE_LOG} has its full log."

    def cancel(self, owner: str) -> bool:
        """Stop `owner`'s evaluation; True when there was one."""
        return self.device.cancel(owner, "evaluation")

    def close(self) -> None:
        """Stop the evaluation in progress, if any (the studio is closing)."""
        with self._state:
            running = self._running
        if running is not None:
            self._end(running[1])

    def _stop(self, owner: str) -> None:
        with self._state:
            running = self._running
        if running is not None and running[0] == owner:
            self._end(running[1])

    @staticmethod
    def _end(process) -> None:
        """Its whole process group (start_new_session): the child and anything under it, asked, then killed."""
        child_processes.stop(process, STOP_GRACE_S)
