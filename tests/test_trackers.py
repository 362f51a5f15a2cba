"""report_to: the tracker gets the same numbers as metrics.jsonl; a missing tracker package stops the run before
the model loads, naming the package. The run trains on an imported LeRobot dataset, whose provenance the
adapter card carries."""

from __future__ import annotations

import importlib.machinery
import json
import sys
import types

import pytest
from conftest import read_events, run_trainer, tiny_config, write_config

from tests.lerobot_fixture import write_lerobot
from trainer.__main__ import main as trainer_main
from trainer.spec.config import ConfigError, config_from_dict


def test_tensorboard_gets_every_step_of_metrics_jsonl_and_the_card_names_the_lerobot_source(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    data = tmp_path / "pick"
    assert (
        trainer_main(
            [
                "import-data",
                str(write_lerobot(tmp_path / "so100", "v3.0")),
                "--to",
                str(data),
                "--num-frames",
                "9",
                "--held-out-episodes",
                "1",
            ]
        )
        == 0
    )
    cfg = tiny_config(data, tmp_path / "runs", name="tracked", max_steps=2, report_to="tensorboard")
    result = run_trainer("train", "--config", str(write_config(tmp_path / "c.json", cfg)))
    assert result.returncode == 0, result.stderr[-3000:]

    run = tmp_path / "runs" / "tracked"
    steps = [e for e in read_events(run) if e["event"] == "step"]
    board = EventAccumulator(str(run / "trackers" / "cosmos-lora-studio"))
    board.Reload()
    for name in ("loss", "lr", "step_time"):
        logged = [(s.step, s.value) for s in board.Scalars(name)]
        assert logged == [(e["step"], pytest.approx(e[name], rel=1e-6)) for e in steps], name

    card = json.loads((run / "adapter" / "adapter_card.json").read_text())
    provenance = card["dataset_provenance"]
    assert provenance == json.loads((data / "provenance.json").read_text())
    assert (provenance["codebase_version"], provenance["camera"], provenance["split"]) == (
        "v3.0",
        "observation.images.top",
        "train",
    )
    assert provenance["episodes"] == [0, 1, 4, 5] and provenance["other_split_episodes"] == [2]  # 3 is too short


@pytest.mark.parametrize("tracker", ["wandb", "trackio"])
def test_a_missing_tracker_package_is_one_sentence_before_the_model_loads(tracker, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, tracker, None)  # `import wandb` fails, as when it is not installed
    message = (
        f"report_to: {tracker} needs the {tracker} package, which is not installed; pip install {tracker}, "
        'or set report_to to "none"'
    )
    with pytest.raises(ConfigError) as error:
        config_from_dict({"data": "sample", "report_to": tracker})
    assert [str(problem) for problem in error.value.problems] == [message]

    cfg = write_config(tmp_path / "c.json", tiny_config("sample", tmp_path / "runs", report_to=tracker))
    assert trainer_main(["train", "--config", str(cfg)]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # stopped before the run folder or the model


def test_an_installed_tracker_package_is_accepted(monkeypatch):
    fake = types.ModuleType("wandb")
    fake.__spec__ = importlib.machinery.ModuleSpec("wandb", None)
    monkeypatch.setitem(sys.modules, "wandb", fake)
    assert config_from_dict({"data": "sample", "report_to": "wandb"}).report_to == "wandb"
    assert config_from_dict({"data": "sample"}).report_to == "none"


def test_every_number_of_a_step_event_goes_to_the_tracker_at_that_step():
    from trainer.trackers import TrackedEvents

    class Recorder:  # stands for both metrics.jsonl's EventWriter and accelerate's `log`
        def __init__(self):
            self.events, self.logged = [], []

        def emit(self, kind, **fields):
            self.events.append({"event": kind, **fields})
            return self.events[-1]

        def log(self, values, step):
            self.logged.append((step, values))

    recorder = Recorder()
    events = TrackedEvents(recorder, recorder)
    events.emit("checkpoint", step=7, path="checkpoints/step-7")
    record = events.emit("step", step=7, epoch=0, loss=0.25, lr=1e-4, step_time=0.5, grad_norm=1.5)
    assert recorder.logged == [(7, {"epoch": 0, "loss": 0.25, "lr": 1e-4, "step_time": 0.5, "grad_norm": 1.5})]
    assert recorder.events[-1] == record and [e["event"] for e in recorder.events] == ["checkpoint", "step"]
