"""Which checkpoint is best: `evaluate --checkpoints all` scores every complete checkpoint of a run and its final
adapter, lists them by step and names the step with the lowest validation loss."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_trainer, tiny_config, write_config

from trainer.checkpoint_sweep import curve, format_curve


def test_every_checkpoint_is_scored_by_step_and_the_best_named(tmp_path, clip_dataset):
    raw = tiny_config(clip_dataset, tmp_path / "runs", name="swept", max_steps=3, checkpoint_every=1)
    raw["keep_checkpoints"] = 2  # steps 2 and 3 kept, step 1 pruned: the sweep scores what is on disk
    trained = run_trainer("train", "--config", str(write_config(tmp_path / "c.json", raw)))
    assert trained.returncode == 0, trained.stderr[-3000:]
    run = tmp_path / "runs" / "swept"
    args = ["evaluate", "--data", str(clip_dataset), "--max-clips", "1", "--steps", "2", "--num-frames", "9"]
    scored = run_trainer(*args, "--json", "--checkpoints", "all", "--adapter", str(run / "adapter"))
    assert scored.returncode == 0, scored.stderr[-3000:]
    result = json.loads(scored.stdout)
    points = result["checkpoints"]["points"]
    # the final adapter (step 3) is the step-3 checkpoint's twin: scored once, as the checkpoint
    assert [(p["step"], p["variant"]) for p in points] == [(0, "base"), (2, "swept@step-2"), (3, "swept@step-3")]
    best = result["checkpoints"]["best"]
    trained_points = points[1:]
    assert best == min(trained_points, key=lambda p: p["val_loss"])
    assert [p["val_loss"] for p in points] == [result["variants"][p["variant"]]["val_loss"] for p in points]

    no_run = run_trainer(*args, "--checkpoints", "all", "--adapter", str(clip_dataset))
    assert no_run.returncode == 2
    assert "--checkpoints all: " in no_run.stderr and "is not a run with checkpoints; give runs/RUN." in no_run.stderr


def test_the_best_is_the_lowest_validation_loss_and_the_table_marks_it():
    result = {
        "variants": {
            "base": {"val_loss": 0.3, "psnr": 18.0, "hand_accuracy": 0.25},
            "r@step-300": {"val_loss": 0.12, "psnr": 19.0, "hand_accuracy": 0.5},
            "r@step-600": {"val_loss": 0.11, "psnr": 19.5, "hand_accuracy": 0.75},
            "r@step-900": {"val_loss": 0.13, "psnr": 19.4, "hand_accuracy": 0.75},
        }
    }
    swept = curve(result, {"r@step-300": 300, "r@step-600": 600, "r@step-900": 900})
    assert swept["best"]["step"] == 600 and swept["best_by"] == "val_loss"
    table = format_curve(swept).splitlines()
    assert table[3].endswith("<- best") and "r@step-600" in table[3]
    assert table[-1] == "best checkpoint (lowest validation loss): r@step-600 at step 600"


def test_the_evaluate_panel_plots_every_score_against_the_step_and_marks_the_best():
    from studio.evaluation import evaluate_argv
    from studio.tab_evaluate import BEST, best_line, curve_frame
    from trainer.spec.generate_settings import SETTING_NAMES, GenerateSettings

    swept = {
        "points": [
            {"step": 0, "variant": "base", "val_loss": 0.3, "psnr": 18.0, "hand_accuracy": 0.25},
            {"step": 300, "variant": "r@step-300", "val_loss": 0.12, "psnr": 19.0, "hand_accuracy": 0.5},
            {"step": 600, "variant": "r@step-600", "val_loss": 0.11, "psnr": 19.5, "hand_accuracy": 0.75},
        ],
        "best_by": "val_loss",
    }
    swept["best"] = swept["points"][2]
    frame = curve_frame(swept)
    loss = frame[frame["series"] == "val loss"]
    assert loss["step"].tolist() == [0, 300, 600] and loss.iloc[:, 1].tolist()[-1] == 1.0  # lowest loss: best
    assert frame[frame["series"] == BEST]["step"].tolist() == [600, 600]
    assert best_line(swept).startswith("**Best checkpoint: r@step-600** (step 600: val loss 0.1100, PSNR 19.50 dB")
    settings = {name: getattr(GenerateSettings(), name) for name in SETTING_NAMES}
    argv = evaluate_argv(settings, "sample:held_out", 1, [], Path("out"), card=False, checkpoints=True)
    assert "--checkpoints=all" in argv
