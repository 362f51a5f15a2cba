"""A run folder damaged on disk never breaks the Train tab: each fault shows what the user reads, exactly.

The faults: a malformed metrics.jsonl line, a torn status.json, a garbage config.json, and the trainer killed
with SIGKILL while it wrote a checkpoint. Each is checked through the tab's own handlers (tick, run_command).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import gradio as gr
import pytest

from studio import tab_train_runs
from studio.adapter_registry import AdapterRegistry
from studio.dataset_controller import DatasetController
from studio.folders import Workspace
from studio.generation_client import GenerationClient
from studio.jobs import JobManager
from studio.run_view import RunMonitor
from studio.workspace import Studio
from trainer.spec.run_folder import CHECKPOINTS_DIR, CONFIG_FILE, METRICS_FILE, STATUS_FILE

CONFIG = {
    "data": "sample",
    "name": "a",
    "output_dir": "runs",
    "max_steps": 9,
    "height": 64,
    "width": 64,
    "num_frames": 9,
    "checkpoint_every": 2,
}


@pytest.fixture
def studio(tmp_path) -> Studio:
    ws = Workspace((tmp_path / "ws").resolve())
    # The "trainer" a Resume launches: exits at once; these tests look at what is written before it runs.
    jobs = JobManager(ws, launcher=lambda config: [sys.executable, "-c", "pass"])
    return Studio(
        ws,
        jobs,
        RunMonitor(jobs),
        DatasetController(ws, jobs),
        AdapterRegistry(ws),
        GenerationClient(ws, jobs, gpu=False),
    )


@pytest.fixture
def warnings(monkeypatch) -> list[str]:
    shown: list[str] = []
    monkeypatch.setattr(gr, "Warning", lambda message, *a, **k: shown.append(message))
    monkeypatch.setattr(gr, "Info", lambda message, *a, **k: shown.append(message))
    return shown


def make_run(studio: Studio, state: str = "stopped", step: int = 2, **files: str) -> Path:
    run = studio.workspace.runs / "a"
    run.mkdir(parents=True)
    (run / CONFIG_FILE).write_text(json.dumps({**CONFIG, "output_dir": str(studio.workspace.runs)}))
    (run / STATUS_FILE).write_text(json.dumps({"state": state, "step": step, "total": 9, "pid": None}))
    events = [{"event": "start", "time": 1, "total_steps": 9, "resumed_from": 0}]
    events += [{"event": "step", "step": s, "loss": 1 / s, "lr": 1e-4, "time": 1 + s} for s in range(1, step + 1)]
    (run / METRICS_FILE).write_text("".join(json.dumps(e) + "\n" for e in events))
    for name, text in files.items():
        (run / name.replace("_", ".")).write_text(text)
    return run


def checkpoint(run: Path, step: int, complete: bool = True) -> Path:
    folder = run / CHECKPOINTS_DIR / (f"step-{step}" if complete else f".step-{step}.partial")
    folder.mkdir(parents=True)
    (folder / "adapter_state.safetensors").write_bytes(b"weights")
    if complete:
        (folder / "DONE").write_text("")
    return folder


def test_a_malformed_metrics_line_is_named_and_skipped(studio):
    run = make_run(studio)
    with (run / METRICS_FILE).open("a") as fh:
        fh.write('{"event": "step", "step": "nine", "loss": 0.1, "time": 9}\n{"event": "step", "ste\n')
        fh.write(json.dumps({"event": "step", "step": 3, "loss": 0.25, "time": 10}) + "\n")
    for _ in range(2):  # also after a restart of the studio: a new monitor reads the file from its start
        shown = tab_train_runs.tick(studio, "a", None)
        headline, error, loss = shown["headline"], shown["error"], shown["loss_plot"]
        assert headline == "**a** · stopped · step 3/9 · final loss 0.2500"
        assert error == (
            "\n\n**Could not read:**\n"
            "- metrics.jsonl line 4: step is 'nine', not a whole number; the line is skipped\n"
            "- metrics.jsonl line 5: not valid JSON; the line is skipped"
        )
        assert loss[loss["series"] == "loss"]["step"].tolist() == [1, 2, 3]  # the raw series
        studio.monitor = RunMonitor(studio.jobs)


def test_a_torn_status_file_is_reported_and_resume_refuses(studio, warnings):
    run = make_run(studio)
    checkpoint(run, 2)
    (run / STATUS_FILE).write_text('{"state": "fini')
    headline, error = (tab_train_runs.tick(studio, "a", None)[k] for k in ("headline", "error"))
    assert headline == "**a** · unknown · step 2/9 · final loss 0.5000"  # what metrics.jsonl still says
    assert error == (
        "\n\n**Could not read:**\n- status.json is not valid JSON at line 1, column 11 (a write was "
        "cut off, or the file was edited)"
    )
    tab_train_runs.run_command(studio, "resume", "a")
    assert warnings == [
        "Run 'a' cannot be resumed: status.json is not valid JSON at line 1, column 11 (a write was "
        "cut off, or the file was edited); start a new run."
    ]
    assert studio.jobs.current() is None and json.loads((run / CONFIG_FILE).read_text()).get("resume", "") == ""


def test_a_garbage_config_file_is_reported_and_resume_refuses(studio, warnings):
    run = make_run(studio, state="finished")
    (run / CONFIG_FILE).write_bytes(b"\x00\x13garbage")
    headline, error = (tab_train_runs.tick(studio, "a", None)[k] for k in ("headline", "error"))
    assert headline == "**a** · finished · step 2/9 · final loss 0.5000"
    assert error == (
        "\n\n**Could not read:**\n- config.json is not valid JSON at line 1, column 1 (a write was cut "
        "off, or the file was edited)"
    )
    tab_train_runs.run_command(studio, "resume", "a")
    assert warnings == [
        "Run 'a' cannot be resumed: config.json is not valid JSON at line 1, column 1 (a write was "
        "cut off, or the file was edited); start a new run."
    ]


def test_a_finished_run_is_not_resumed(studio, warnings):
    make_run(studio, state="finished")
    tab_train_runs.run_command(studio, "resume", "a")
    assert warnings == ["Run 'a' already finished; start a new run to train further."]


def test_a_trainer_killed_mid_checkpoint_resumes_from_the_last_complete_one(studio, warnings):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    run = make_run(studio, state="running", step=3)
    (run / STATUS_FILE).write_text(json.dumps({"state": "running", "step": 3, "total": 9, "pid": int(gone.stdout)}))
    kept = checkpoint(run, 2)
    checkpoint(run, 4, complete=False)  # SIGKILL while step-4 was being written: only its hidden folder exists
    headline, error = (tab_train_runs.tick(studio, "a", None)[k] for k in ("headline", "error"))
    assert headline == "**a** · failed · step 3/9 · final loss 0.3333 · exit code unknown"
    assert error == "**Failed:** the training process ended without reporting (exit code unknown)"
    tab_train_runs.run_command(studio, "resume", "a")
    assert warnings == ["Run 'a' resumes from its latest checkpoint."]
    assert json.loads((run / CONFIG_FILE).read_text())["resume"] == "latest"  # the trainer takes step-2
    assert (kept / "DONE").exists() and (kept / "adapter_state.safetensors").read_bytes() == b"weights"


def test_no_checkpoint_asks_before_starting_over(studio, warnings):
    run = make_run(studio, state="failed", step=3)
    start_over = tab_train_runs.run_command(studio, "resume", "a")["start_over"]
    assert warnings == [
        "Run 'a' has no checkpoint to resume from (it saves one every 2 steps); confirm to start it over from step 0."
    ]
    assert start_over == gr.update(visible=True) and studio.jobs.current() is None
    tab_train_runs.run_command(studio, "start_over", "a")
    assert warnings[-1] == "Run 'a' starts over from step 0."
    assert json.loads((run / CONFIG_FILE).read_text()).get("resume", "") == ""


STUDIO_THAT_STARTS_A_RUN = r"""
import sys, time
from pathlib import Path
from studio.folders import Workspace
from studio.jobs import JobManager
from trainer.spec.config import config_from_dict

trainer, workspace = sys.argv[1], Path(sys.argv[2])
jobs = JobManager(Workspace(workspace), launcher=lambda config: [sys.executable, trainer, str(config), "wait"])
jobs.start(config_from_dict({"data": "sample", "name": "a", "max_steps": 100, "height": 64, "width": 64,
                             "num_frames": 9}))
print("started", flush=True)
time.sleep(60)  # killed long before
"""


def test_a_studio_killed_mid_run_finds_the_run_again_and_sees_it_finish(tmp_path, studio):
    """kill -9 of the studio while it trains: the trainer (its own process group) keeps going; the next studio
    re-attaches, shows it training, then finished, with every step on the curve."""
    from test_studio_controllers import FAKE_TRAINER

    trainer = tmp_path / "fake_trainer.py"
    trainer.write_text(FAKE_TRAINER)
    old = subprocess.Popen(
        [sys.executable, "-c", STUDIO_THAT_STARTS_A_RUN, str(trainer), str(studio.workspace.root)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert old.stdout.readline().strip() == "started"
    run = studio.workspace.runs / "a"
    deadline = time.monotonic() + 20
    while not (run / METRICS_FILE).exists() or '"step"' not in (run / METRICS_FILE).read_text():
        assert time.monotonic() < deadline, "the trainer never reported a step"
        time.sleep(0.05)
    old.kill()  # SIGKILL: no atexit, no cleanup
    old.wait(5)

    view = tab_train_runs.tick(studio, "a", None)  # a new studio on the same workspace
    assert view["headline"].startswith("**a** · training · step ") and view["error"] == ""
    deadline = time.monotonic() + 30
    while (view := tab_train_runs.tick(studio, "a", None))["numbers"].get("state") == "running":
        assert time.monotonic() < deadline, view["headline"]
        time.sleep(0.1)
    assert view["headline"] == "**a** · finished · step 100/100 · final loss 0.0100"
    assert view["loss_plot"]["step"].drop_duplicates().tolist() == list(range(1, 101))
