"""`train` end to end on the tiny pipeline: run folder, adapter round trips, stop/resume, data refusal."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from conftest import REPO, read_events, run_trainer, tiny_config, write_clip_dataset, write_config


def _train(tmp_path, data, name, **overrides):
    cfg = write_config(tmp_path / f"{name}.json", tiny_config(data, tmp_path / "runs", name=name, **overrides))
    result = run_trainer("train", "--config", str(cfg))
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp_path / "runs" / name


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, clip_dataset):
    """rank 4 / alpha 8: alpha != rank, the case that needs the LoRA metadata to reload at the right scale."""
    return _train(
        tmp_path_factory.mktemp("lora"), clip_dataset, "lora-r4a8", rank=4, alpha=8.0, learning_rate=5e-3, max_steps=4
    )


@pytest.fixture(scope="module")
def dora_run(tmp_path_factory, clip_dataset):
    return _train(
        tmp_path_factory.mktemp("dora"),
        clip_dataset,
        "dora",
        adapter="dora",
        rank=4,
        alpha=4.0,
        learning_rate=5e-3,
        max_steps=4,
    )


def test_run_folder_layout_and_events(lora_run):
    assert {p.name for p in lora_run.iterdir()} >= {
        "config.json",
        "status.json",
        "metrics.jsonl",
        "train.log",
        "checkpoints",
        "adapter",
    }
    status = json.loads((lora_run / "status.json").read_text())
    assert status["state"] == "finished" and status["step"] == status["total"] == 4
    events = read_events(lora_run)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done" and kinds.count("step") == 4
    steps = [e for e in events if e["event"] == "step"]
    assert [e["step"] for e in steps] == [1, 2, 3, 4]
    assert all(np.isfinite(e["loss"]) and e["lr"] > 0 and e["step_time"] > 0 for e in steps)
    assert (lora_run / "checkpoints" / "step-4" / "DONE").exists()
    card = json.loads((lora_run / "adapter" / "adapter_card.json").read_text())
    assert card["base_model"] == "tiny" and card["adapter"] == "lora"
    assert (card["rank"], card["alpha"], card["steps"]) == (4, 8.0, 4)
    assert card["final_loss"] == pytest.approx(steps[-1]["loss"])
    assert card["dataset"]["clips"] == 4 and len(card["dataset"]["digest"]) == 64
    assert "load_lora_weights" in (lora_run / "adapter" / "README.md").read_text()


def test_learning_rate_schedule_spans_the_real_run(lora_run):
    lrs = [e["lr"] for e in read_events(lora_run) if e["event"] == "step"]
    peak = 5e-3 * 0.5  # f_max
    assert lrs[0] == pytest.approx(peak)  # warm-up of 1 step
    assert lrs[-1] == pytest.approx(5e-3 * 0.2)  # f_min reached at the last step, not at step 100000


def _plain_diffusers_frames(adapter_dir, image, prompt):
    """What a user gets with diffusers alone: from_pretrained + load_lora_weights, same seed and settings."""
    from diffusers import Cosmos2_5_PredictBasePipeline

    from trainer.cosmos import NoGuardrail, tiny_model_dir

    pipe = Cosmos2_5_PredictBasePipeline.from_pretrained(tiny_model_dir(), safety_checker=NoGuardrail())
    if adapter_dir is not None:
        pipe.load_lora_weights(adapter_dir, adapter_name="user")
    out = pipe(
        video=[image],
        prompt=prompt,
        height=64,
        width=64,
        num_frames=9,
        num_inference_steps=3,
        guidance_scale=7.0,
        num_latent_conditional_frames=1,
        output_type="np",
        generator=torch.Generator().manual_seed(7),
    ).frames[0]
    return (np.clip(out, 0, 1) * 255).round().astype(np.uint8)


@pytest.mark.parametrize("run_fixture", ["lora_run", "dora_run"])
def test_adapter_reloads_in_plain_diffusers_and_matches_generate(run_fixture, request, clip_dataset, tmp_path):
    from PIL import Image

    from trainer.generate import AdapterChoice, GenerateRequest, Renderer
    from trainer.video import read_frames

    run_dir = request.getfixturevalue(run_fixture)
    first = clip_dataset / "videos" / "clip00.mp4"
    prompt = "A red box slides down."
    req = GenerateRequest(
        prompt=prompt,
        out_dir=str(tmp_path),
        image=str(first),
        seed=7,
        steps=3,
        height=64,
        width=64,
        num_frames=9,
        adapters=[AdapterChoice(str(run_dir / "adapter"))],
    )
    frames = Renderer("tiny", guardrail=False, precision="fp32").render_frames(req).frames  # plain diffusers' dtype
    image = Image.fromarray(read_frames(first, 0, 1)[0])
    plain_adapter = _plain_diffusers_frames(run_dir / "adapter", image, prompt)
    plain_base = _plain_diffusers_frames(None, image, prompt)
    name = run_dir.name
    np.testing.assert_array_equal(frames[name], plain_adapter)
    np.testing.assert_array_equal(frames["base"], plain_base)  # base: the pipeline with no adapter loaded
    assert np.abs(frames[name].astype(int) - frames["base"]).max() > 0  # the adapter changes the output


def test_alpha_is_stored_so_scale_round_trips(lora_run):
    from safetensors import safe_open

    with safe_open(str(lora_run / "adapter" / "pytorch_lora_weights.safetensors"), "pt") as f:
        meta = f.metadata()
    stored = json.loads(meta["lora_adapter_metadata"])
    assert (stored["transformer.r"], stored["transformer.lora_alpha"]) == (4, 8.0)


def test_dora_saves_one_trained_magnitude_per_layer(dora_run):
    """Every adapted layer's DoRA magnitude is saved, sized by its output features, and moved by training
    (peft starts each magnitude at the row norm of the frozen weight)."""
    from diffusers import Cosmos2_5_PredictBasePipeline
    from safetensors.torch import load_file

    from trainer.cosmos import NoGuardrail, tiny_model_dir

    weights = load_file(str(dora_run / "adapter" / "pytorch_lora_weights.safetensors"))
    magnitudes = {k: v for k, v in weights.items() if "magnitude" in k}
    layers = {k.rsplit(".lora", 1)[0] for k in weights if "magnitude" not in k}
    assert len(magnitudes) == len(layers) > 0
    base = dict(
        Cosmos2_5_PredictBasePipeline.from_pretrained(
            tiny_model_dir(), safety_checker=NoGuardrail()
        ).transformer.named_modules()
    )
    moved = 0
    for key, magnitude in magnitudes.items():
        weight = base[key.removeprefix("transformer.").rsplit(".lora", 1)[0]].weight.detach()
        assert magnitude.shape == (weight.shape[0],), key
        moved += not torch.allclose(magnitude.float(), weight.norm(dim=1), atol=1e-6)
    assert moved > len(magnitudes) // 2


def _wait_for_step(run_dir, step, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if any(e["event"] == "step" and e["step"] >= step for e in read_events(run_dir)):
            return
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        time.sleep(0.05)
    raise AssertionError(f"no step {step} within {timeout} s")


def test_sigterm_stops_cleanly_and_resume_finishes_identically(tmp_path, clip_dataset):
    total = 24
    base = dict(max_steps=total, learning_rate=5e-3, checkpoint_every=0)
    ref = _train(tmp_path, clip_dataset, "uninterrupted", **base)
    cfg_path = write_config(tmp_path / "c.json", tiny_config(clip_dataset, tmp_path / "runs", name="stopped", **base))
    proc = subprocess.Popen(
        [sys.executable, "-m", "trainer", "train", "--config", str(cfg_path)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    run_dir = tmp_path / "runs" / "stopped"
    _wait_for_step(run_dir, 3, proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 0
    status = json.loads((run_dir / "status.json").read_text())
    stopped_at = status["step"]
    assert status["state"] == "stopped" and 3 <= stopped_at < total
    assert (run_dir / "checkpoints" / f"step-{stopped_at}" / "DONE").exists()
    assert (run_dir / "adapter" / "pytorch_lora_weights.safetensors").exists()
    assert read_events(run_dir)[-1]["state"] == "stopped"

    result = run_trainer("train", "--config", str(cfg_path), "--set", 'resume="latest"')
    assert result.returncode == 0, result.stderr[-2000:]
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "finished" and status["step"] == total
    steps = [e for e in read_events(run_dir) if e["event"] == "step"]
    assert [e["step"] for e in steps] == list(range(1, total + 1))  # numbering continues, no step twice
    resumed = [e for e in read_events(run_dir) if e["event"] == "start"][-1]
    assert resumed["resumed_from"] == stopped_at
    reference = [e for e in read_events(ref) if e["event"] == "step"]
    # Same data order, noise, learning rate and optimizer state: the losses match the uninterrupted run.
    assert [e["lr"] for e in steps] == pytest.approx([e["lr"] for e in reference])
    assert [e["loss"] for e in steps] == pytest.approx([e["loss"] for e in reference], rel=1e-4)


def test_bad_clips_refuse_to_start_naming_each_or_are_skipped_and_recorded(tmp_path):
    data = write_clip_dataset(tmp_path / "data", clips=4, frames=13)
    (data / "videos" / "clip01.mp4").write_bytes(b"not a video at all")
    (data / "metas" / "clip02.txt").unlink()
    cfg = write_config(tmp_path / "c.json", tiny_config(data, tmp_path / "runs", name="bad"))
    result = run_trainer("train", "--config", str(cfg))
    assert result.returncode == 1
    status = json.loads((tmp_path / "runs" / "bad" / "status.json").read_text())
    assert status["state"] == "failed"
    assert "clip01.mp4" in status["error"] and "clip02.mp4" in status["error"] and "skip_invalid" in status["error"]
    assert "clip00.mp4" not in status["error"]

    result = run_trainer("train", "--config", str(cfg), "--set", "skip_invalid=true", "--set", "name=skipped")
    assert result.returncode == 0, result.stderr[-2000:]
    dropped = json.loads((tmp_path / "runs" / "skipped" / "invalid_items.json").read_text())
    assert sorted(d["video"].rsplit("/", 1)[-1] for d in dropped) == ["clip01.mp4", "clip02.mp4"]
    assert [e for e in read_events(tmp_path / "runs" / "skipped") if e["event"] == "start"][0]["clips"] == 2


def test_invalid_config_exits_2_listing_fields(tmp_path):
    cfg = write_config(tmp_path / "c.json", {"data": "x", "rank": 0, "num_frames": 10, "colour": 1})
    result = run_trainer("train", "--config", str(cfg))
    assert result.returncode == 2
    for name in ("rank", "num_frames", "colour"):
        assert f"{name}:" in result.stderr
