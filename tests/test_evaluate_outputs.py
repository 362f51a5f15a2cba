"""`evaluate --events --out --card`: progress as JSON lines, the first clip's comparison with the scores in
compare.json, and the scores in each adapter's card; a checkpoint is scored as `<run>@step-N`."""

from __future__ import annotations

import json
import shutil

import pytest
from adapterfactory import make_adapter
from conftest import run_trainer

SCORES = {"val_loss", "psnr", "ssim", "hand_accuracy"}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """runs/robot/adapter and its copy as the complete checkpoint runs/robot/checkpoints/step-3."""
    run = tmp_path_factory.mktemp("ws") / "runs" / "robot"
    make_adapter(run / "adapter")
    checkpoint = run / "checkpoints" / "step-3"
    shutil.copytree(run / "adapter", checkpoint)
    (checkpoint / "DONE").write_text("complete\n")
    return run


def test_events_comparison_and_cards(run_dir, tmp_path):
    out = tmp_path / "comparison"
    checkpoint = run_dir / "checkpoints" / "step-3"
    result = run_trainer(
        "evaluate",
        "--events",
        "--card",
        "--out",
        str(out),
        "--max-clips",
        "1",
        "--steps",
        "2",
        "--num-frames",
        "9",
        "--no-guardrail",
        "--adapter",
        f"{run_dir / 'adapter'}:0.5",
        "--adapter",
        str(checkpoint),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    events = [json.loads(line) for line in result.stdout.splitlines()]
    progress = [e for e in events if e["event"] == "progress"]
    assert [e["event"] for e in events[-1:]] == ["done"] and len(progress) == 3 * 2  # 3 variants x 2 steps
    assert {(e["variant"], e["step"], e["clip"], e["clips"]) for e in progress} >= {("robot@step-3", 2, 1, 1)}
    scores = events[-1]["result"]
    assert set(scores["variants"]) == {"base", "robot", "robot@step-3"}
    assert all(set(v) == SCORES for v in scores["variants"].values())
    assert events[-1]["out_dir"] == str(out)

    record = json.loads((out / "compare.json").read_text())
    assert [v["name"] for v in record["variants"]] == ["base", "robot", "robot@step-3"]
    assert record["evaluation"] == scores and record["num_frames"] == 9
    assert all((out / v["file"]).is_file() for v in record["variants"]) and (out / "compare.mp4").is_file()

    for folder, name in ((run_dir / "adapter", "robot"), (checkpoint, "robot@step-3")):
        card = json.loads((folder / "adapter_card.json").read_text())
        entry = card["evaluation"]
        assert entry["data"] == "sample:held_out" and entry["clips"] == 1
        assert entry["scores"] == scores["variants"][name] and entry["base"] == scores["variants"]["base"]
        assert entry["settings"]["steps"] == 2 and card["rank"] == 4  # the rest of the card is kept
        assert json.loads((folder / "evaluation.json").read_text()) == scores  # what publish shows


def test_errors_are_one_event_and_the_exit_code(tmp_path):
    missing = run_trainer("evaluate", "--events", "--data", str(tmp_path / "missing"))
    assert missing.returncode == 1
    (event,) = [json.loads(line) for line in missing.stdout.splitlines()]
    assert event["event"] == "error" and "missing" in event["message"]
    bad = run_trainer("evaluate", "--events", "--num-frames", "10")
    assert bad.returncode == 2 and json.loads(bad.stdout)["message"].startswith("num_frames")
    old = tmp_path / "runs" / "robot" / "checkpoints" / "step-1"
    old.mkdir(parents=True)
    (old / "adapter_state.safetensors").write_bytes(b"weights")
    older = run_trainer("evaluate", "--adapter", str(old))
    assert older.returncode == 2
    assert "it is a checkpoint saved before checkpoints held a loadable adapter" in older.stderr


def test_a_damaged_card_is_left_as_it_is(tmp_path, capsys):
    from types import SimpleNamespace

    from trainer.evaluate_outputs import record_in_cards

    scores = {"val_loss": 0.1, "psnr": 20.0, "ssim": 0.5, "hand_accuracy": None}
    result = {
        "settings": {"data": "sample:held_out", "clips": 1, "keys": ["a"]},
        "variants": {"base": scores, "good": scores, "bad": scores},
    }
    (tmp_path / "good").mkdir()
    (tmp_path / "bad").mkdir()
    (tmp_path / "good" / "adapter_card.json").write_text(json.dumps({"rank": 8}))
    (tmp_path / "bad" / "adapter_card.json").write_text('{"rank": 8, "notes": "my hand-written not')
    written = record_in_cards([SimpleNamespace(name=n, path=tmp_path / n) for n in ("good", "bad")], result)
    assert written == [tmp_path / "good" / "adapter_card.json"]
    good = json.loads((tmp_path / "good" / "adapter_card.json").read_text())
    assert good["rank"] == 8 and good["evaluation"]["scores"] == scores
    assert (tmp_path / "bad" / "adapter_card.json").read_text() == '{"rank": 8, "notes": "my hand-written not'
    assert json.loads((tmp_path / "bad" / "evaluation.json").read_text()) == result
    assert "bad's adapter_card.json cannot be read as a card; it is left as it is" in capsys.readouterr().err
