"""Runs to build on and the run queue, through the Gradio-free controllers (studio.form_sources, studio.run_queue).

The queue's runs are real child processes: the fake trainer of test_studio_controllers, which speaks the
run-folder contract. A studio restart is a new JobManager and RunQueue on the same workspace.
"""

from __future__ import annotations

import json

import pytest
from test_studio_controllers import cfg, fake, manager, training_step, wait_until  # noqa: F401 (fixtures)

from studio.device import Device
from studio.form_sources import MAX_PRESETS, FormSourceError, FormSources, config_values
from studio.jobs import JobError, JobManager
from studio.paths import PathRefused
from studio.run_queue import QueueFull, RunQueue
from studio.train_form import FORM_FIELDS, build_config, preset_values
from trainer.spec.config import ConfigError, save_config
from trainer.spec.run_folder import CONFIG_FILE, STATUS_FILE, RunState, read_status


def state(jobs: JobManager, name: str) -> RunState | None:
    status = read_status(jobs.runs_dir / name)
    return status.state if status else None


# --- clone ----------------------------------------------------------------------------------------------
def test_clone_fills_the_form_with_the_runs_config_under_a_fresh_name(manager):
    original = cfg(
        "robot-lora",
        rank=8,
        alpha=4.0,
        learning_rate=3e-5,
        target_modules=["to_q", "to_v"],
        output_dir=str(manager.runs_dir),
    )
    save_config(original, manager.runs_dir / "robot-lora" / CONFIG_FILE)
    before = (manager.runs_dir / "robot-lora" / CONFIG_FILE).read_text()
    sources = FormSources(manager.ws)

    values = sources.run("robot-lora", {"robot-lora"})
    assert values["name"] == "robot-lora-2"
    assert (values["rank"], values["alpha"], values["learning_rate"]) == (8, 4.0, 3e-5)
    assert values["target_modules"] == "to_q, to_v"  # as the form's text box shows a list
    clone = build_config(values).config  # the form is valid as it stands
    assert clone.to_dict() | {"name": "robot-lora"} == original.to_dict() | {"output_dir": "runs"}
    assert sources.run("robot-lora", {"robot-lora", "robot-lora-2"})["name"] == "robot-lora-3"
    assert (manager.runs_dir / "robot-lora" / CONFIG_FILE).read_text() == before  # never touched


def test_clone_of_a_run_with_sample_prompts_shows_no_server_path_and_starts_again(manager, fake):
    frame = manager.workspace / "datasets" / "frames" / "first.png"
    frame.parent.mkdir(parents=True)
    frame.write_bytes(b"png")
    prompts = [{"image": "datasets/frames/first.png", "prompt": "the left arm waves"}]
    manager.start(cfg("robot", sample_every=2, sample_prompts=prompts))
    assert manager.wait(10)
    saved = json.loads((manager.runs_dir / "robot" / CONFIG_FILE).read_text())
    assert saved["sample_prompts"][0]["image"] == str(frame)  # pinned for the trainer, which runs elsewhere

    values = FormSources(manager.ws).run("robot", {"robot"})
    assert values["sample_prompts"] == "datasets/frames/first.png | the left arm waves"
    assert str(manager.workspace) not in json.dumps(values)
    clone = build_config(values).config
    manager.start(clone)  # the clone starts as it stands, the frame pinned again
    assert manager.wait(10) and state(manager, clone.name) is RunState.FINISHED
    assert json.loads((manager.runs_dir / clone.name / CONFIG_FILE).read_text())["sample_prompts"] == [
        {"image": str(frame), "prompt": "the left arm waves"}
    ]


def test_clone_of_a_command_line_run_shows_its_data_relative_to_the_workspace(manager):
    data = manager.workspace / "datasets" / "robot"
    save_config(cfg("cli", data=str(data), output_dir=str(manager.runs_dir)), manager.runs_dir / "cli" / CONFIG_FILE)
    save_config(
        cfg("far", data="/srv/private/clips", output_dir=str(manager.runs_dir)), manager.runs_dir / "far" / CONFIG_FILE
    )
    sources = FormSources(manager.ws)
    assert sources.run("cli", {"cli"})["data"] == "datasets/robot"
    assert sources.run("far", {"far"})["data"] == "clips"  # this studio reads no server folder: named, not shown


def test_clone_refuses_a_missing_run_a_path_and_a_damaged_config(manager):
    sources = FormSources(manager.ws)
    with pytest.raises(FormSourceError, match=r"^No run named 'nope' in runs/; pick one from the runs list\.$"):
        sources.run("nope", set())
    with pytest.raises(PathRefused, match="must be one name"):
        sources.run("../../etc", set())
    (manager.runs_dir / "bad").mkdir(parents=True)
    (manager.runs_dir / "bad" / CONFIG_FILE).write_text(json.dumps({"name": "bad", "data": "d", "rnak": 4}))
    with pytest.raises(
        FormSourceError,
        match=r"^Run 'bad' cannot be cloned: its config.json has problems "
        r"\(rnak: unknown key \(did you mean 'rank'\?\)\)\.$",
    ):
        sources.run("bad", set())


# --- presets --------------------------------------------------------------------------------------------
def test_preset_save_and_load_roundtrip_next_to_the_builtin_ones(tmp_path):
    sources = FormSources(tmp_path / "ws")
    values = preset_values("cpu-tiny") | {"rank": 16, "alpha": 8.0, "learning_rate": 5e-5, "name": "arm-r16"}
    path = sources.save_preset("my-r16", values)

    assert path == tmp_path / "ws" / "presets" / "my-r16.json"
    saved = json.loads(path.read_text())
    assert (saved["rank"], saved["alpha"], saved["name"]) == (16, 8.0, "arm-r16")
    assert "output_dir" not in saved and "resume" not in saved  # the studio decides those per run
    assert sources.preset_names() == ["cpu-tiny", "gpu-recipe", "my-r16"]
    assert sources.preset("my-r16") == {n: values[n] for n in FORM_FIELDS}
    assert sources.preset("cpu-tiny") == preset_values("cpu-tiny")

    sources.save_preset("my-r16", values | {"rank": 4})  # saving again replaces the workspace's own preset
    assert sources.preset("my-r16")["rank"] == 4


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../escape", "must be one name"),
        ("a/b", "must be one name"),
        ("", "must be one name"),
        (".hidden", "must be one name"),
        ("cpu-tiny", "'cpu-tiny' is a built-in preset and cannot be replaced"),
    ],
)
def test_preset_with_a_bad_name_is_refused_and_nothing_is_written(tmp_path, name, message):
    sources = FormSources(tmp_path / "ws")
    with pytest.raises(ValueError, match=message):
        sources.save_preset(name, preset_values("cpu-tiny"))
    assert not list(tmp_path.rglob("*.json"))


def test_preset_of_an_invalid_form_names_every_field(tmp_path):
    sources = FormSources(tmp_path / "ws")
    with pytest.raises(ConfigError) as refused:
        sources.save_preset("broken", preset_values("cpu-tiny") | {"rank": 0, "learning_rate": -1.0})
    assert {p.field for p in refused.value.problems} == {"rank", "learning_rate"}
    assert not (tmp_path / "ws" / "presets" / "broken.json").exists()


def test_hand_edited_preset_is_named_with_its_problem_and_not_applied(tmp_path):
    sources = FormSources(tmp_path / "ws")
    sources.save_preset("mine", preset_values("cpu-tiny"))
    path = tmp_path / "ws" / "presets" / "mine.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | {"rnak": 2}))
    with pytest.raises(
        FormSourceError,
        match=r"^presets/mine.json has problems \(rnak: unknown key \(did you mean "
        r"'rank'\?\)\); fix them in the file or save the preset again\.$",
    ):
        sources.preset("mine")
    path.write_text("{not json")
    with pytest.raises(FormSourceError, match=r"^presets/mine.json cannot be read"):
        sources.preset("mine")
    with pytest.raises(FormSourceError, match=r"^No preset named 'other'; pick one from the list\.$"):
        sources.preset("other")


def test_presets_are_capped(tmp_path, monkeypatch):
    monkeypatch.setattr("studio.form_sources.MAX_PRESETS", 2)
    sources = FormSources(tmp_path / "ws")
    sources.save_preset("one", preset_values("cpu-tiny"))
    sources.save_preset("two", preset_values("cpu-tiny"))
    with pytest.raises(FormSourceError, match=r"^The workspace already holds 2 presets"):
        sources.save_preset("three", preset_values("cpu-tiny"))
    sources.save_preset("two", preset_values("cpu-tiny"))  # replacing one is not adding one
    assert MAX_PRESETS == 200


# --- the queue ------------------------------------------------------------------------------------------
def test_second_start_is_queued_and_starts_when_the_first_ends(manager, fake):
    queue = RunQueue(manager)
    fake.mode = "wait"
    assert queue.submit(cfg("a")).position == 0
    wait_until(lambda: training_step(manager, "a") >= 1)
    fake.mode = "finish"
    b, c = queue.submit(cfg("b")), queue.submit(cfg("c"))
    assert (b.name, b.position, c.position) == ("b", 1, 2)
    for name in ("b", "c"):  # the queued run's folder: its config and status only
        assert sorted(p.name for p in (manager.runs_dir / name).iterdir()) == [CONFIG_FILE, STATUS_FILE]
        assert state(manager, name) is RunState.QUEUED
    assert json.loads((manager.runs_dir / "b" / CONFIG_FILE).read_text())["max_steps"] == 100
    assert queue.queued() == ["b", "c"]
    assert (queue.note("a"), queue.note("b"), queue.note("c")) == (
        "2 queued after it",
        "position 1 of 2 in the queue",
        "position 2 of 2 in the queue",
    )
    assert queue.pump() is None and state(manager, "b") is RunState.QUEUED  # a still trains

    manager.stop("a")
    assert manager.wait(10)
    assert queue.pump() == "b"
    assert manager.current().name == "b" and queue.queued() == ["c"]
    assert manager.wait(10) and state(manager, "b") is RunState.FINISHED
    assert queue.pump() == "c" and manager.wait(10) and state(manager, "c") is RunState.FINISHED
    assert queue.pump() is None and state(manager, "a") is RunState.STOPPED


def test_the_watcher_starts_the_next_run_with_no_one_asking(manager, fake):
    queue = RunQueue(manager)
    fake.mode = "wait"
    queue.submit(cfg("a"))
    fake.mode = "finish"
    queue.submit(cfg("b"))
    queue.watch(interval=0.05)
    try:
        manager.stop("a")
        wait_until(lambda: state(manager, "b") is RunState.FINISHED)
        assert manager.wait(10)
    finally:
        queue.close()


def test_cancel_keeps_the_config_and_only_takes_queued_runs(manager, fake):
    queue = RunQueue(manager)
    fake.mode = "wait"
    queue.submit(cfg("a"))
    queue.submit(cfg("b"))
    queue.cancel("b")
    assert state(manager, "b") is RunState.CANCELLED and queue.queued() == []
    assert json.loads((manager.runs_dir / "b" / CONFIG_FILE).read_text())["name"] == "b"  # kept, clonable
    assert FormSources(manager.ws).run("b", {"a", "b"})["name"] == "b-2"
    with pytest.raises(JobError, match=r"^Run 'b' is not queued \(cancelled\), so there is nothing to cancel\.$"):
        queue.cancel("b")
    with pytest.raises(
        JobError,
        match=r"^Run 'a' is not queued \(running\), so there is nothing to cancel; stop "
        r"it instead\.$",
    ):
        queue.cancel("a")
    manager.stop("a")
    assert manager.wait(10) and queue.pump() is None and state(manager, "b") is RunState.CANCELLED


def test_a_queued_run_cannot_be_resumed_past_the_queue(manager, fake):
    queue = RunQueue(manager)
    fake.mode = "wait"
    queue.submit(cfg("a"))
    queue.submit(cfg("b"))
    manager.stop("a")
    assert manager.wait(10)
    with pytest.raises(JobError, match=r"^Run 'b' is queued; it starts when the run before it ends\.$"):
        manager.resume("b")


def test_the_queue_survives_a_studio_restart(tmp_path, manager, fake):
    fake.mode = "wait"
    RunQueue(manager).submit(cfg("a"))
    wait_until(lambda: training_step(manager, "a") >= 1)
    fake.mode = "finish"
    for name in ("c", "b"):  # queued order, not name order
        RunQueue(manager).submit(cfg(name))

    restarted = JobManager(tmp_path / "ws", launcher=fake)  # a new studio process on the same workspace
    queue = RunQueue(restarted)
    assert restarted.current().name == "a" and queue.queued() == ["c", "b"]
    assert queue.pump() is None
    restarted.stop("a")
    assert restarted.wait(10)
    assert queue.pump() == "c" and restarted.wait(10)
    assert queue.pump() == "b" and restarted.wait(10)
    assert [state(restarted, n) for n in "acb"] == [RunState.STOPPED, RunState.FINISHED, RunState.FINISHED]


def test_a_full_workspace_holds_the_queue_instead_of_failing_it(tmp_path, manager, fake):
    from studio.folders import Workspace

    busy = Device(manager, gpu=True)
    busy.take_now("generation", "someone")
    for name in ("a", "b"):
        RunQueue(manager, busy).submit(cfg(name))  # queued while the device was busy
    full = JobManager(Workspace(manager.workspace, max_bytes=1), launcher=fake)  # a studio with a quota, reached
    queue = RunQueue(full)
    assert queue.pump() is None and queue.pump() is None
    assert [state(full, n) for n in "ab"] == [RunState.QUEUED, RunState.QUEUED]  # both still wait, in order
    assert read_status(full.runs_dir / "a").error.startswith("The workspace is full (")
    roomy = RunQueue(JobManager(manager.workspace, launcher=fake))  # room was made
    assert roomy.pump() == "a" and roomy.jobs.wait(10)
    assert state(full, "a") is RunState.FINISHED and read_status(full.runs_dir / "a").error is None


def test_the_queue_is_capped_with_a_clear_message(manager, fake):
    queue = RunQueue(manager, limit=2)
    fake.mode = "wait"
    queue.submit(cfg("a"))
    queue.submit(cfg("b"))
    queue.submit(cfg("c"))
    with pytest.raises(
        QueueFull,
        match=r"^The queue already holds 2 runs, the most it takes; wait for one to start "
        r"or cancel one, then start this run again\.$",
    ):
        queue.submit(cfg("d"))
    assert not (manager.runs_dir / "d").exists()


def test_a_queued_run_that_cannot_start_fails_with_the_reason_and_the_next_starts(manager, fake):
    queue = RunQueue(manager)
    fake.mode = "wait"
    queue.submit(cfg("a"))
    fake.mode = "finish"
    queue.submit(cfg("b"))
    queue.submit(cfg("c"))
    config = manager.runs_dir / "b" / CONFIG_FILE
    config.write_text(json.dumps(json.loads(config.read_text()) | {"rank": -1}))  # edited while it waited
    manager.stop("a")
    assert manager.wait(10)
    assert queue.pump() == "c"
    status = read_status(manager.runs_dir / "b")
    assert status.state is RunState.FAILED
    assert status.error.startswith("it could not start from the queue: rank: ")
    assert manager.wait(10) and state(manager, "c") is RunState.FINISHED


def test_a_queued_run_is_checked_like_a_started_one(manager, fake):
    queue = RunQueue(manager)
    fake.mode = "wait"
    queue.submit(cfg("a"))
    with pytest.raises(JobError, match=r"^Run 'a' in runs/ already exists"):
        queue.submit(cfg("a"))
    with pytest.raises(ValueError, match="outside the workspace"):
        queue.submit(cfg("b", data="/etc"))
    assert not (manager.runs_dir / "b").exists() and queue.queued() == []


def test_form_values_of_a_config_are_every_form_field(manager):
    assert list(config_values(cfg("x"))) == list(FORM_FIELDS)


def test_on_a_gpu_a_run_waits_for_a_generation_then_the_idle_worker_is_closed(manager, fake):
    device, closed = Device(manager, gpu=True), []
    device.leaves_idle["generation"] = lambda: closed.append(1)  # the idle worker's model
    device.take_now("generation", "someone")
    queue = RunQueue(manager, device)
    assert queue.submit(cfg("a")).position == 1  # nothing trains, but a generation holds the GPU
    assert queue.pump() is None and closed == [] and state(manager, "a") is RunState.QUEUED
    device.give_back("someone")
    assert queue.pump() == "a" and closed == [1]  # its model leaves the GPU before the run loads
    assert manager.wait(10) and state(manager, "a") is RunState.FINISHED
    device.gpu = False  # on the CPU they share the cores: nothing waits
    device.take_now("generation", "someone")
    assert queue.submit(cfg("b")).position == 0 and closed == [1]
    assert manager.wait(10)
