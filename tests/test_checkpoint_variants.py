"""A run's checkpoints are adapters: loadable by diffusers, rendered as `<run>@step-N`, equal to the final
adapter at the last step; checkpoints of the older resume-only form still resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import run_trainer, tiny_config, write_config
from safetensors.torch import load_file, save_file


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, clip_dataset):
    tmp = tmp_path_factory.mktemp("ckpt")
    cfg = tiny_config(
        clip_dataset,
        tmp / "runs",
        name="robot",
        rank=4,
        alpha=8.0,
        learning_rate=5e-3,
        max_steps=2,
        checkpoint_every=1,
        keep_checkpoints=0,
    )
    result = run_trainer("train", "--config", str(write_config(tmp / "c.json", cfg)))
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp / "runs" / "robot"


def test_each_checkpoint_is_an_adapter_folder_with_a_card_of_its_step(run_dir):
    from trainer.spec.run_folder import CARD_FILE, WEIGHTS_FILE

    for step in (1, 2):
        folder = run_dir / "checkpoints" / f"step-{step}"
        assert (folder / WEIGHTS_FILE).is_file() and (folder / "DONE").is_file()
        card = json.loads((folder / CARD_FILE).read_text())
        assert (card["steps"], card["rank"], card["alpha"], card["base_model"]) == (step, 4, 8.0, "tiny")
    last = load_file(str(run_dir / "checkpoints" / "step-2" / WEIGHTS_FILE))
    final = load_file(str(run_dir / "adapter" / WEIGHTS_FILE))
    assert last.keys() == final.keys() and all(k.startswith("transformer.") for k in last)
    assert all(torch.equal(last[k], final[k]) for k in last)
    first = load_file(str(run_dir / "checkpoints" / "step-1" / WEIGHTS_FILE))
    assert any(not torch.equal(first[k], last[k]) for k in last)  # step 2 trained on


def test_a_checkpoint_renders_as_run_at_step_and_the_last_equals_the_final_adapter(run_dir, tmp_path):
    from trainer.generate import AdapterChoice, GenerateRequest, Renderer
    from trainer.spec.embedded import resolve_data

    clip = sorted((resolve_data("sample:held_out") / "videos").glob("*.mp4"))[0]
    choices = [
        AdapterChoice(str(run_dir / "checkpoints" / "step-1")),
        AdapterChoice(str(run_dir / "checkpoints" / "step-2")),
        AdapterChoice(str(run_dir / "adapter")),
    ]
    assert [c.name for c in choices] == ["robot@step-1", "robot@step-2", "robot"]
    request = GenerateRequest(
        prompt="the left arm waves",
        out_dir=str(tmp_path / "out"),
        image=str(clip),
        model="tiny",
        steps=2,
        height=64,
        width=64,
        num_frames=9,
        guardrail=False,
        adapters=choices,
    )
    record = Renderer("tiny", guardrail=False, precision="fp32").render(request)
    assert [v["name"] for v in record["variants"]] == ["base", "robot@step-1", "robot@step-2", "robot"]
    assert record["variants"][2]["card"]["steps"] == 2
    from trainer.video import read_frames

    frames = {v["name"]: read_frames(tmp_path / "out" / v["file"], 0, 9) for v in record["variants"]}
    assert np.array_equal(frames["robot@step-2"], frames["robot"])
    assert not np.array_equal(frames["robot@step-1"], frames["robot"])


def test_an_older_resume_only_checkpoint_still_resumes(run_dir, tmp_path):
    import shutil

    from trainer import checkpoints
    from trainer.spec.run_folder import WEIGHTS_FILE

    old = tmp_path / "step-2"
    shutil.copytree(run_dir / "checkpoints" / "step-2", old)
    state = checkpoints.adapter_weights(old)
    save_file(state, str(old / checkpoints.ADAPTER_FILE))
    (old / WEIGHTS_FILE).unlink()
    again = checkpoints.adapter_weights(old)
    assert again.keys() == state.keys() and not any(k.startswith("transformer.") for k in again)
    assert all(torch.equal(again[k], state[k]) for k in state)
