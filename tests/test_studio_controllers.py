"""The studio's Gradio-free controllers: job manager, metrics tail, train form and run view.

Jobs run a tiny fake trainer (a Python script written into tmp_path) that speaks the real run-folder contract
through trainer.spec.run_folder, so start/stop/crash/re-attach are exercised with real child processes in ~a second.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from studio.jobs import PROCESS_LOG, JobBusy, JobError, JobManager, NoCheckpoint, trainer_argv
from studio.metrics_tail import RAW, SMOOTHED, MetricsTail, loss_curve, loss_frame, progress
from trainer.spec.config import ConfigError, config_from_dict
from trainer.spec.run_folder import (
    CONFIG_FILE,
    LOG_FILE,
    METRICS_FILE,
    EventWriter,
    RunState,
    Status,
    read_status,
    write_status,
)

REPO_ROOT = Path(__file__).resolve().parents[1]

FAKE_TRAINER = r"""
import json, signal, sys, time, os
from pathlib import Path
from trainer.spec.run_folder import EventWriter, RunState, Status, write_status

config = json.loads(Path(sys.argv[1]).read_text())
mode = sys.argv[2]
run_dir = Path(config["output_dir"]) / config["name"]
if mode == "crash":
    print("loading model", flush=True)
    print("RuntimeError: boom, CUDA out of memory", file=sys.stderr, flush=True)
    sys.exit(3)

stop = []
signal.signal(signal.SIGTERM, signal.SIG_IGN if mode == "stubborn" else (lambda *_: stop.append(1)))
total = 3 if mode == "finish" else 100
events = EventWriter(run_dir)
events.emit("start", run=config["name"], total_steps=total, resumed_from=0)
step = 0
write_status(run_dir, Status(RunState.RUNNING, pid=os.getpid(), step=step, total=total))
deadline = time.time() + 20  # a stray fake never outlives the test session by much
while step < total and not stop and time.time() < deadline:
    step += 1
    events.emit("step", step=step, epoch=0, loss=1.0 / step, lr=1e-4, step_time=0.01)
    write_status(run_dir, Status(RunState.RUNNING, pid=os.getpid(), step=step, total=total))
    time.sleep(0.01 if mode == "finish" else 0.05)
if stop:
    time.sleep(0.3)  # "finishing the step and checkpointing" after the stop request
    (run_dir / "checkpoints" / f"step-{step}").mkdir(parents=True)
    (run_dir / "checkpoints" / f"step-{step}" / "DONE").write_text("")
state = RunState.STOPPED if stop else RunState.FINISHED
events.emit("done", step=step, state=state.value, final_loss=1.0 / step, adapter="adapter")
write_status(run_dir, Status(state, pid=os.getpid(), step=step, total=total))
"""


# Like accelerate's launcher: runs the trainer as its child and dies at once on SIGTERM (no handler).
FAKE_LAUNCHER = r"""
import subprocess, sys
sys.exit(subprocess.call([sys.executable, *sys.argv[1:]]))
"""


@pytest.fixture
def fake(tmp_path):
    """A launcher running the fake trainer; `fake.mode` picks how the next run behaves: finish (3 steps), wait
    (trains until SIGTERM, then stops), stubborn (ignores SIGTERM), crash (exits 3 without touching status.json)."""
    script = tmp_path / "fake_trainer.py"
    script.write_text(FAKE_TRAINER)
    launcher = tmp_path / "fake_launcher.py"
    launcher.write_text(FAKE_LAUNCHER)

    class Fake:
        mode = "finish"
        through_launcher = False

        def __call__(self, config_path: Path) -> list[str]:
            argv = [sys.executable, str(script), str(config_path), self.mode]
            return [sys.executable, str(launcher), *argv[1:]] if self.through_launcher else argv

    return Fake()


@pytest.fixture
def manager(tmp_path, fake):
    jobs = JobManager(tmp_path / "ws", launcher=fake)
    yield jobs
    job = jobs.current()  # never leave a fake trainer running after a failed assertion
    if job is not None:
        jobs.kill(job.name)
        job.wait(5)


def cfg(name: str = "a", **extra):
    return config_from_dict(
        {"data": "data", "name": name, "max_steps": 100, "height": 64, "width": 64, "num_frames": 9, **extra}
    )


def wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting for the fake trainer"
        time.sleep(0.02)


def info(jobs: JobManager, name: str):
    return next(run for run in jobs.runs() if run.name == name)


def training_step(jobs: JobManager, name: str) -> int:
    status = read_status(jobs.runs_dir / name)
    return status.step if status and status.state is RunState.RUNNING and status.pid else 0


# --- job manager ----------------------------------------------------------------------------------------
def test_start_writes_config_and_runs_to_finished(manager):
    job = manager.start(cfg("a"))
    run_dir = manager.runs_dir / "a"
    saved = json.loads((run_dir / CONFIG_FILE).read_text())
    assert saved["name"] == "a" and saved["output_dir"] == str(manager.runs_dir)
    assert config_from_dict(saved).max_steps == 100
    assert job.wait(10) and manager.current() is None
    run = info(manager, "a")
    assert (run.state, run.step, run.total, run.exit_code, run.error) == (RunState.FINISHED, 3, 3, 0, None)
    tail = MetricsTail(run_dir / METRICS_FILE)
    assert [e["step"] for e in tail.poll() if e["event"] == "step"] == [1, 2, 3]
    assert (run_dir / PROCESS_LOG).exists() and str(run_dir / CONFIG_FILE) in manager.log_tail("a")


def test_second_start_is_refused_naming_the_busy_run(manager, fake):
    fake.mode = "wait"
    manager.start(cfg("a"))
    wait_until(lambda: training_step(manager, "a") >= 1)
    with pytest.raises(JobBusy, match=r"^Run 'a' is training \(step \d+/100\); stop it first\.$"):
        manager.start(cfg("b"))
    assert not (manager.runs_dir / "b").exists()


def test_stop_is_graceful_and_resume_continues_from_latest(manager, fake):
    fake.mode = "wait"
    job = manager.start(cfg("a"))
    wait_until(lambda: training_step(manager, "a") >= 2)
    manager.stop("a")
    assert job.wait(10)
    run = info(manager, "a")
    assert (run.state, run.exit_code, run.error, run.active) == (RunState.STOPPED, 0, None, False)
    assert run.step >= 2

    fake.mode = "finish"
    job = manager.resume("a")
    assert json.loads((manager.runs_dir / "a" / CONFIG_FILE).read_text())["resume"] == "latest"
    assert job.wait(10)
    assert info(manager, "a").state is RunState.FINISHED
    with pytest.raises(JobError, match="Run 'a' already finished"):
        manager.resume("a")


def test_resume_without_a_checkpoint_asks_before_starting_over(manager, fake):
    fake.mode = "crash"
    assert manager.start(cfg("a", checkpoint_every=600)).wait(10)
    with pytest.raises(NoCheckpoint) as refused:
        manager.resume("a")
    assert str(refused.value) == (
        "Run 'a' has no checkpoint to resume from (it saves one every 600 steps); confirm to start it over from step 0."
    )
    fake.mode = "finish"
    assert manager.resume("a", start_over=True).wait(10)
    assert json.loads((manager.runs_dir / "a" / CONFIG_FILE).read_text())["resume"] == ""
    assert info(manager, "a").state is RunState.FINISHED


def test_stop_through_a_launcher_keeps_the_run_busy_until_the_trainer_has_checkpointed(manager, fake):
    fake.mode, fake.through_launcher = "wait", True
    job = manager.start(cfg("a"))
    wait_until(lambda: training_step(manager, "a") >= 1)
    assert read_status(manager.runs_dir / "a").pid != job.process.pid  # the trainer reported its own pid
    manager.stop("a")
    wait_until(lambda: job.process.poll() is not None)  # the launcher died on SIGTERM at once
    assert manager.current() is job  # ... but the trainer is still checkpointing: no second run may start
    with pytest.raises(JobBusy):
        manager.start(cfg("b"))
    assert job.wait(10)
    run = info(manager, "a")
    assert (run.state, run.error, run.exit_code) == (RunState.STOPPED, None, -15)


def test_kill_ends_a_trainer_that_ignores_stop(manager, fake):
    fake.mode = "stubborn"
    job = manager.start(cfg("a"))
    wait_until(lambda: training_step(manager, "a") >= 1)
    manager.stop("a")
    assert not job.wait(0.3)  # the UI offers kill when stop has not worked after a while
    manager.kill("a")
    assert job.wait(5)
    run = info(manager, "a")
    assert run.state is RunState.FAILED and run.exit_code == -9
    assert "killed from the studio" in run.error


def test_crash_is_recorded_with_exit_code_and_log_tail(manager, fake):
    fake.mode = "crash"
    job = manager.start(cfg("a"))
    assert job.wait(10)
    run = info(manager, "a")
    assert (run.state, run.exit_code) == (RunState.FAILED, 3)
    assert "exited with code 3" in run.error and "boom, CUDA out of memory" in run.error
    assert run.last_log_lines[-1] == "RuntimeError: boom, CUDA out of memory"
    assert read_status(manager.runs_dir / "a").state is RunState.FAILED


def test_new_manager_reattaches_to_the_running_job(tmp_path, manager, fake):
    fake.mode = "wait"
    job = manager.start(cfg("a"))
    wait_until(lambda: training_step(manager, "a") >= 1)

    restarted = JobManager(tmp_path / "ws")  # the studio restarted: no Popen, only the run folder
    assert restarted.current() is not None and restarted.current().name == "a"
    assert info(restarted, "a").active
    with pytest.raises(JobBusy, match="Run 'a' is training"):
        restarted.start(cfg("b"))
    restarted.stop("a")
    assert job.wait(10)
    assert restarted.current() is None and info(restarted, "a").state is RunState.STOPPED


def test_run_whose_process_is_gone_is_marked_failed_keeping_its_data(tmp_path):
    run_dir = tmp_path / "ws" / "runs" / "gone"
    run_dir.mkdir(parents=True)
    (run_dir / CONFIG_FILE).write_text(cfg("gone").to_json())
    EventWriter(run_dir).emit("step", step=7, epoch=0, loss=0.5, lr=1e-4, step_time=0.1)
    (run_dir / LOG_FILE).write_text("step 7\n")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    write_status(run_dir, Status(RunState.RUNNING, pid=dead.pid, step=7, total=100))
    metrics_before = (run_dir / METRICS_FILE).read_text()

    jobs = JobManager(tmp_path / "ws")
    assert jobs.current() is None
    status = read_status(run_dir)
    assert (status.state, status.step, status.total) == (RunState.FAILED, 7, 100)
    assert status.error.startswith("the training process ended without reporting (exit code unknown)")
    assert (run_dir / METRICS_FILE).read_text() == metrics_before and (run_dir / LOG_FILE).exists()


def test_start_refuses_existing_run_and_runs_outside_the_workspace(manager):
    assert manager.start(cfg("a")).wait(10)
    with pytest.raises(JobError, match=r"Run .a. in .* already exists; choose another name or resume it"):
        manager.start(cfg("a"))
    with pytest.raises(ConfigError, match="output_dir: the studio keeps runs in"):
        manager.start(cfg("b", output_dir="/elsewhere"))
    with pytest.raises(JobError, match="No run named 'nope'"):
        manager.log_tail("nope")
    with pytest.raises(JobError, match="Run 'a' is not training"):
        manager.stop("a")


def test_default_argv_is_accelerate_launch_and_uses_cpu_without_gpus(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    argv = trainer_argv(Path("/w/runs/a/config.json"))
    assert argv[:5] == [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1"]
    assert argv[5:8] == ["--cpu", "--quiet", "--main_process_port"] and 1024 < int(argv[8]) < 65536  # a free one
    assert argv[9:] == ["-m", "trainer", "train", "--config", "/w/runs/a/config.json"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert "--cpu" not in trainer_argv(Path("c.json"))


def test_controllers_do_not_import_torch_diffusers_or_gradio():
    code = (
        "import sys, studio.jobs, studio.adapter_registry, studio.metrics_tail; "
        "print(sorted(m for m in ('torch', 'diffusers', 'gradio') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- metrics tail ---------------------------------------------------------------------------------------
def test_metrics_tail_reads_only_complete_new_lines(tmp_path):
    path = tmp_path / METRICS_FILE
    tail = MetricsTail(path)
    assert tail.poll() == []  # no file yet
    path.write_text('{"event": "step", "step": 1, "loss": 0.9, "time": 10}\n{"event": "step", "st')
    assert [e["step"] for e in tail.poll()] == [1]
    assert tail.poll() == []  # the partial line stays buffered
    with path.open("a") as fh:
        fh.write('ep": 2, "loss": 0.8, "time": 11}\nnot json\n{"event": "step", "step": 3, "loss": 0.7, "time": 12}\n')
    assert [e["step"] for e in tail.poll()] == [2, 3]  # the damaged line is skipped
    assert [e["step"] for e in tail.events] == [1, 2, 3]


def test_metrics_tail_restarts_on_a_truncated_or_replaced_file(tmp_path):
    path = tmp_path / METRICS_FILE
    tail = MetricsTail(path)
    path.write_text("".join(json.dumps({"event": "step", "step": i, "time": i}) + "\n" for i in range(1, 5)))
    assert len(tail.poll()) == 4
    path.write_text(json.dumps({"event": "start", "time": 0}) + "\n")  # truncated: shorter than what was read
    assert [e["event"] for e in tail.poll()] == ["start"] and len(tail.events) == 1
    replacement = tmp_path / "new.jsonl"
    replacement.write_text("".join(json.dumps({"event": "step", "step": i, "time": i}) + "\n" for i in range(9)))
    os.replace(replacement, path)  # replaced by a longer file: a new inode
    assert len(tail.poll()) == 9 and len(tail.events) == 9


def test_loss_frame_and_progress():
    events = [{"event": "start", "time": 0, "total_steps": 10}]
    events += [{"event": "step", "step": s, "loss": 1 / s, "lr": 1e-4, "time": 100 + 2 * s} for s in range(1, 6)]
    events += [{"event": "start", "time": 200, "total_steps": 10, "resumed_from": 3}]
    events += [
        {"event": "step", "step": s, "loss": 0.5, "lr": 2e-4, "grad_norm": 0.25 * s, "time": 200 + 0.5 * s}
        for s in range(4, 7)
    ]
    frame = loss_frame(events)
    assert list(frame.columns) == ["step", "loss", "lr", "grad_norm"]
    assert frame.loc[frame["step"] == 6, "grad_norm"].item() == 1.5
    assert frame.loc[frame["step"] == 2, "grad_norm"].isna().all()  # logged before grad_norm existed: a gap
    assert frame["step"].tolist() == [1, 2, 3, 4, 5, 6]
    assert frame.loc[frame["step"] == 5, "loss"].item() == 0.5  # the resumed attempt's value wins
    assert frame.loc[frame["step"] == 3, "loss"].item() == pytest.approx(1 / 3)  # history up to the checkpoint
    # Started over (no checkpoint): the curve is the new attempt's only.
    over = events + [
        {"event": "start", "time": 300, "total_steps": 10, "resumed_from": 0},
        {"event": "step", "step": 1, "loss": 0.9, "time": 301},
    ]
    assert loss_frame(over)[["step", "loss"]].values.tolist() == [[1, 0.9]]
    p = progress(events, Status(RunState.RUNNING, step=6, total=10))
    assert p["step"] == 6 and p["total"] == 10 and p["last_loss"] == 0.5
    assert p["steps_per_second"] == pytest.approx(2.0)  # measured on the current attempt only
    assert p["eta_seconds"] == pytest.approx(2.0)
    assert progress([], None) == {
        "step": 0,
        "total": 0,
        "steps_per_second": None,
        "eta_seconds": None,
        "last_loss": None,
    }


def test_loss_curve_is_the_raw_loss_and_its_debiased_moving_average():
    frame = loss_frame(
        [{"event": "step", "step": s, "loss": float(s % 2), "lr": 1e-4, "time": s} for s in range(1, 41)]
    )
    curve = loss_curve(frame)
    raw, smoothed = (curve[curve["series"] == name] for name in (RAW, SMOOTHED))
    assert raw["loss"].tolist() == frame["loss"].tolist() and raw["step"].tolist() == smoothed["step"].tolist()
    assert smoothed["loss"].iloc[0] == 1.0  # debiased: the first point is the first loss, not a tenth of it
    expected, weights = 0.0, 0.0  # the definition, step by step
    for loss in frame["loss"]:
        expected, weights = 0.9 * expected + loss, 0.9 * weights + 1
    assert smoothed["loss"].iloc[-1] == pytest.approx(expected / weights)
    assert smoothed["loss"].std() < 0.3 * raw["loss"].std()  # the alternating 0/1 loss is smoothed out


# --- train form (studio.train_form) ---------------------------------------------------------------------
def test_form_fields_come_from_the_config_and_defaults_are_the_cpu_preset():
    from studio.train_form import ADVANCED_FIELDS, BASIC_FIELDS, FORM_FIELDS, field_kind, preset_values
    from trainer.spec.config import FIELD_NAMES, field_help

    assert set(FORM_FIELDS) == set(FIELD_NAMES) - {"output_dir", "resume"} and len(FORM_FIELDS) == len(set(FORM_FIELDS))
    assert all(field_help()[n]["group"] == "basic" for n in BASIC_FIELDS)
    assert {"rank", "alpha", "learning_rate", "max_steps", "epochs", "adapter", "model", "data"} <= set(BASIC_FIELDS)
    assert {"cache", "mixed_precision", "target_modules", "conditional_frames"} <= set(ADVANCED_FIELDS)
    kinds = {n: field_kind(n) for n in ("adapter", "rank", "alpha", "compile", "target_modules", "conditional_frames")}
    assert kinds == {
        "adapter": "choice",
        "rank": "int",
        "alpha": "float",
        "compile": "bool",
        "target_modules": "list",
        "conditional_frames": "table",
    }
    values = preset_values("cpu-tiny")
    assert (values["model"], values["data"], values["rank"], values["height"]) == ("tiny", "sample", 32, 64)
    assert values["target_modules"] == "to_q, to_k, to_v, to_out.0, ff.net.0.proj, ff.net.2"
    assert values["conditional_frames"] == "1: 0.5, 2: 0.5"


def test_form_builds_the_same_config_the_trainer_validates():
    from studio.train_form import build_config, preset_values

    values = preset_values("cpu-tiny") | {
        "name": "a",
        "max_steps": 5.0,
        "target_modules": "to_q, to_k",
        "conditional_frames": "1: 1",
    }
    form = build_config(values)
    assert form.problems == [] and form.config is not None
    assert (form.config.max_steps, form.config.target_modules, form.config.conditional_frames) == (
        5,
        ["to_q", "to_k"],
        {1: 1.0},
    )
    assert form.raw["output_dir"] == "runs" and form.raw == form.config.to_dict()

    bad = build_config(values | {"rank": 0, "height": 65, "alpha": None, "conditional_frames": "one half"})
    assert bad.config is None
    assert bad.fields_with_problems == ["alpha", "conditional_frames", "rank", "height"]
    assert "rank: must be at least 1 (got 0)" in [str(p) for p in bad.problems]
    assert "alpha: must be a number (the box is empty)" in [str(p) for p in bad.problems]


def test_presets_size_labels_and_unique_names():
    from studio.train_form import CUSTOM_SIZE, build_config, preset_names, preset_values, size_label, unique_run_name

    assert {"cpu-tiny", "gpu-recipe"} <= set(preset_names())
    for name in preset_names():  # every shipped preset fills a valid form
        assert build_config(preset_values(name)).problems == [], name
    assert size_label(432, 768, 93) == "432x768, 93 frames (recipe)" and size_label(64, 80, 9) == CUSTOM_SIZE
    assert unique_run_name("tiny-lora", set()) == "tiny-lora"
    assert unique_run_name("tiny-lora", {"tiny-lora", "tiny-lora-2"}) == "tiny-lora-3"
    assert unique_run_name("tiny-lora-2", {"tiny-lora", "tiny-lora-2"}) == "tiny-lora-3"


# --- run view (studio.run_view) -------------------------------------------------------------------------
def test_run_view_headline_numbers_curve_and_failure(manager, fake):
    from studio.run_view import RunMonitor, format_duration

    monitor = RunMonitor(manager)
    assert monitor.view("nope") is None and monitor.default_run() is None
    assert manager.start(cfg("a")).wait(10)
    view = monitor.view("a")
    assert view.state == "finished" and view.frame["step"].tolist() == [1, 2, 3]
    assert view.headline == "**a** · finished · step 3/3 · final loss 0.3333"
    assert (view.numbers["step"], view.numbers["total"], view.numbers["active"]) == (3, 3, False)
    assert " runs/a/config.json finish" in view.log and str(manager.workspace) not in view.log  # no server path
    assert monitor.view("a").signature == view.signature  # nothing new: the poller can skip redrawing

    fake.mode = "crash"
    assert manager.start(cfg("b")).wait(10)
    failed = monitor.view("b")
    assert failed.headline == "**b** · failed · exit code 3" and "boom, CUDA out of memory" in failed.numbers["error"]
    assert monitor.run_names()[0] == "b" and set(monitor.run_names()) == {"a", "b"}
    assert (format_duration(75), format_duration(3725)) == ("1:15", "1:02:05")


def test_run_view_while_training_shows_rate_and_eta(manager, fake):
    from studio.run_view import RunMonitor

    fake.mode = "wait"
    manager.start(cfg("a"))
    wait_until(lambda: training_step(manager, "a") >= 3)
    view = RunMonitor(manager).view("a")
    assert view.state == "running" and view.numbers["active"]
    assert view.headline.startswith("**a** · training · step ") and "/100 · " in view.headline
    assert " steps/s · ETA " in view.headline and " · loss " in view.headline
    manager.stop("a")
