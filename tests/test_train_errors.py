"""An expected failure of `train` ends in one sentence on the console and in status.json; the traceback is in
train.log only; the data and the clip size are checked before the model is loaded."""

from __future__ import annotations

import json

import pytest
from conftest import run_trainer, tiny_config, write_clip_dataset, write_config


def test_bad_data_is_reported_before_the_model_is_loaded_in_one_sentence(tmp_path):
    data = write_clip_dataset(tmp_path / "data", clips=2, frames=13)
    (data / "metas" / "clip01.txt").unlink()
    # A model folder that does not exist: loading it would fail with a different message.
    cfg = write_config(
        tmp_path / "c.json", tiny_config(data, tmp_path / "runs", name="bad", model=str(tmp_path / "nope"))
    )
    result = run_trainer("train", "--config", str(cfg))
    assert result.returncode == 1
    run_dir = tmp_path / "runs" / "bad"
    error = json.loads((run_dir / "status.json").read_text())["error"]
    assert error.startswith("1 of 2 clips in ") and "clip01.mp4: missing caption" in error
    assert "nope" not in error  # the model was never loaded
    assert "Traceback" not in result.stderr and result.stderr.strip().splitlines()[-1].endswith(f"run failed: {error}")
    log = (run_dir / "train.log").read_text()
    assert "Traceback (most recent call last)" in log and "DatasetError" in log


def test_a_clip_too_big_for_a_cpu_is_refused_before_loading(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("the CPU budget applies only where no GPU is visible")
    data = write_clip_dataset(tmp_path / "data", clips=1, frames=13)
    cfg = write_config(tmp_path / "c.json", tiny_config(data, tmp_path / "runs", name="big", height=1024, width=1024))
    result = run_trainer("train", "--config", str(cfg))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    status = json.loads((tmp_path / "runs" / "big" / "status.json").read_text())
    assert status["error"] == (
        "height: 1024x1024x9 frames is 12288 tokens, above the 3645 (240x432x33) allowed on "
        "a CPU (no GPU is visible); lower height, width or num_frames."
    )
