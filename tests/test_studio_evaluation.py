"""The studio's side of checkpoints and evaluation: `run@step-N` variants listed (older checkpoints with their
reason), and `trainer evaluate` run in a child process writing compare.json and the card, with cancel."""

from __future__ import annotations

import json
import shutil
import threading

import pytest
from adapterfactory import make_adapter
from settingsfactory import QUICK_SETTINGS as SETTINGS


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """runs/robot with its adapter, a loadable checkpoint step-3, an older resume-only step-1 and a partial step-5."""
    ws = tmp_path_factory.mktemp("ws")
    run = ws / "runs" / "robot"
    make_adapter(run / "adapter")
    shutil.copytree(run / "adapter", run / "checkpoints" / "step-3")
    (run / "checkpoints" / "step-3" / "DONE").write_text("complete\n")
    old = run / "checkpoints" / "step-1"
    old.mkdir()
    (old / "adapter_state.safetensors").write_bytes(b"weights")
    (old / "DONE").write_text("complete\n")
    shutil.copytree(run / "checkpoints" / "step-3", run / "checkpoints" / ".step-5.partial")
    return ws


@pytest.fixture
def studio(workspace):
    from studio.workspace import open_studio

    studio = open_studio(workspace)
    yield studio
    studio.close()


def test_checkpoints_are_listed_as_run_at_step_and_older_ones_say_why(studio):
    from studio.adapter_registry import OLD_CHECKPOINT, AdapterError

    registry = studio.adapters
    assert [a.name for a in registry.list()] == ["robot"]  # the Adapters tab: adapters only
    assert [(a.name, a.source, a.steps) for a in registry.variants()] == [
        ("robot", "run", 3),
        ("robot@step-3", "checkpoint", 3),
    ]
    assert registry.checkpoints()[1] == {"robot@step-1": OLD_CHECKPOINT}
    assert registry.variant("robot@step-3").path.name == "step-3"
    with pytest.raises(AdapterError, match="Checkpoint 'robot@step-1' was saved before checkpoints held a loadable"):
        registry.variant("robot@step-1")
    with pytest.raises(AdapterError, match="No adapter or checkpoint named 'robot@step-5'"):
        registry.variant("robot@step-5")


def test_evaluate_runs_in_a_child_and_saves_compare_json_and_the_card(studio, workspace):
    events = list(studio.evaluation.evaluate(SETTINGS, ["robot@step-3"], {"robot@step-3": 0.5}, "sample:held_out", 1))
    progress, done = events[:-1], events[-1]
    assert done["event"] == "done" and progress and all(e["event"] == "progress" for e in progress)
    assert {e["variant"] for e in progress} == {"base", "robot@step-3"} and progress[-1]["step"] == 2
    scores = done["result"]["variants"]
    assert set(scores) == {"base", "robot@step-3"} and done["result"]["settings"]["clips"] == 1
    record = json.loads((workspace / "generations" / done["out_dir"].split("/")[-1] / "compare.json").read_text())
    assert record["evaluation"] == done["result"] == done["record"]["evaluation"]
    assert [(v["name"], v.get("scale")) for v in record["variants"]] == [("base", None), ("robot@step-3", 0.5)]
    card = json.loads((workspace / "runs" / "robot" / "checkpoints" / "step-3" / "adapter_card.json").read_text())
    assert card["evaluation"]["scores"] == scores["robot@step-3"] and card["evaluation"]["data"] == "sample:held_out"
    assert (
        json.loads((workspace / "runs" / "robot" / "adapter" / "adapter_card.json").read_text())["evaluation"] is None
    )


def test_cancel_stops_the_child(studio):
    from studio.evaluation import EvaluationError

    events = studio.evaluation.evaluate(SETTINGS | {"steps": 6}, ["robot"], {}, "sample:held_out", 2, owner="me")
    first = next(events)
    assert first["event"] == "progress"
    assert studio.evaluation.cancel("someone else") is False
    threading.Timer(0, studio.evaluation.cancel, ("me",)).start()
    with pytest.raises(EvaluationError, match="The evaluation was cancelled"):
        list(events)
    assert studio.evaluation.cancel("me") is False  # nothing left to cancel


@pytest.mark.parametrize(
    "change, message",
    [
        ({"max_clips": 0}, "clips: score 1 to 48 held-out clips"),
        ({"data": "/etc"}, "That dataset is outside the workspace"),
        ({"variants": ["robot@step-1"]}, "Checkpoint 'robot@step-1' was saved before"),
        ({"settings": SETTINGS | {"num_frames": 10}}, "Fix the settings: num_frames"),
        (
            {"settings": SETTINGS | {"negative_prompt": "blur " * 40_000}},  # too long for a command line
            r"^Fix the settings: negative_prompt: at most 4000 characters \(got 200000\); shorten it\.$",
        ),
    ],
)
def test_refusals_name_the_field(studio, change, message):
    from studio.folders import REFUSALS

    request = {"settings": SETTINGS, "variants": ["robot"], "data": "sample:held_out", "max_clips": 1} | change
    with pytest.raises(REFUSALS, match=message):
        studio.evaluation.check(**request)


def test_a_workspace_dataset_reaches_the_child_relative_to_the_workspace(studio, workspace):
    held = workspace / "datasets" / "held"
    for data in ("datasets/held", str(held)):  # what compare.json, the cards and the status line then show
        assert studio.evaluation.check(SETTINGS, ["robot"], data, 1)[1] == "datasets/held"


def test_the_adapters_tab_shows_the_cards_evaluation(studio, workspace):
    from studio.tab_adapters import show
    from trainer.spec.run_folder import write_json_atomic

    folder = workspace / "runs" / "robot" / "adapter"
    card = json.loads((folder / "adapter_card.json").read_text())
    scores = {"val_loss": 0.12345, "psnr": 21.456, "ssim": 0.5, "hand_accuracy": 0.75}
    write_json_atomic(
        folder / "adapter_card.json",
        card
        | {
            "evaluation": {
                "data": "sample:held_out",
                "clips": 4,
                "created": "2026-01-01T00:00:00Z",
                "scores": scores,
                "base": scores | {"psnr": 19.0, "hand_accuracy": None},
            }
        },
    )
    try:
        shown = show(studio, "robot")
    finally:
        write_json_atomic(folder / "adapter_card.json", card)
    text, raw = shown["card"], shown["card_json"]
    assert raw["evaluation"]["scores"] == scores
    assert "**Evaluation** on 4 clip(s) of `sample:held_out`" in text
    assert "| PSNR (dB) | 21.46 | 19.00 |" in text and "| hand accuracy | 0.75 | — |" in text
