"""The studio's Gradio-free controllers: the job manager and the run view.

Jobs run a tiny fake trainer (a Python script written into tmp_path) that speaks the real run-folder contract
through trainer.spec.run_folder, so start/stop/crash/re-attach are exercised with real child processes in ~a second.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from studio.jobs import PROCESS_LOG, JobBusy, JobError, JobManager, NoCheckpoint, trainer_argv
from studio.metrics_tail import MetricsTail
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
