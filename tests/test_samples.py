"""Samples during training: rendered at the expected steps, decodable, announced, and harmless to training."""

from __future__ import annotations

import json
import socket

import pytest
from conftest import read_events, run_trainer, tiny_config, write_clip_dataset, write_config

from trainer.samples import sample_prompts
from trainer.spec.config import ConfigError, config_from_dict
from trainer.spec.run_folder import EVENTS, SAMPLE_RECORD_FILE, SAMPLES_DIR
from trainer.video import read_frames


def _train(tmp_path, data, name, **overrides):
    # cache auto: the text encoder is dropped after the cache is built and the VAE is a placeholder, the case
    # where the sample prompts must be embedded first and the VAE loaded again for the render.
    cfg = tiny_config(data, tmp_path / "runs", name=name, max_steps=3, cache="auto", **overrides)
    result = run_trainer("train", "--config", str(write_config(tmp_path / f"{name}.json", cfg)))
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp_path / "runs" / name


@pytest.fixture(scope="module")
def sampled(tmp_path_factory, clip_dataset):
    tmp = tmp_path_factory.mktemp("samples")
    return _train(tmp, clip_dataset, "with", sample_every=2), _train(tmp, clip_dataset, "without")


def test_samples_at_step_0_every_n_and_the_last_step(sampled):
    run, _ = sampled
    events = [e for e in read_events(run) if e["event"] == "sample"]
    assert [e["step"] for e in events] == [0, 2, 3]
    assert all(set(e) == {"event", "time", *EVENTS["sample"]} for e in events)
    assert sorted(p.name for p in (run / SAMPLES_DIR).iterdir()) == ["step-0", "step-2", "step-3"]
    for event in events:
        assert event["videos"] == ["sample-0.mp4", "sample-1.mp4"]
        for video in event["videos"]:
            assert read_frames(run / SAMPLES_DIR / f"step-{event['step']}" / video).shape == (9, 64, 64, 3)
        record = json.loads((run / SAMPLES_DIR / f"step-{event['step']}" / SAMPLE_RECORD_FILE).read_text())
        assert record["step"] == event["step"]
        assert [s["seed"] for s in record["samples"]] == [0, 1]
        assert (
            [s["prompt"] for s in record["samples"]]
            == event["prompts"]
            == ["A red box slides down.", "A green box slides down."]
        )
        assert record["settings"]["steps"] == 12 and record["settings"]["num_frames"] == 9


def test_the_adapter_changes_the_samples_and_the_base_is_fixed_noise(sampled):
    run, _ = sampled
    base = read_frames(run / SAMPLES_DIR / "step-0" / "sample-0.mp4").astype(int)
    last = read_frames(run / SAMPLES_DIR / "step-3" / "sample-0.mp4").astype(int)
    other = read_frames(run / SAMPLES_DIR / "step-0" / "sample-1.mp4").astype(int)
    assert (base != last).any()  # the trained adapter renders
    assert (base != other).any()  # each sample its own first frame, prompt and seed


def test_sampling_does_not_change_training(sampled):
    with_samples, without = sampled
    losses = [[e["loss"] for e in read_events(run) if e["event"] == "step"] for run in sampled]
    assert len(losses[0]) == 3 and losses[0] == losses[1]
    assert not (without / SAMPLES_DIR).exists()
    assert not [e for e in read_events(without) if e["event"] == "sample"]


def test_default_prompts_come_from_a_held_out_folder_beside_the_data(tmp_path):
    write_clip_dataset(tmp_path / "train", clips=3)
    write_clip_dataset(tmp_path / "held_out", clips=3, seed=1)
    cfg = config_from_dict({"data": str(tmp_path / "train"), "sample_every": 5})
    prompts = sample_prompts(cfg)
    assert [p.image for p in prompts] == [str(tmp_path / "held_out" / "videos" / f"clip0{i}.mp4") for i in (0, 1)]
    alone = config_from_dict({"data": str(tmp_path / "held_out"), "sample_every": 5})
    assert [p.image for p in sample_prompts(alone)] == [p.image for p in prompts]  # no other split: its own clips


def test_sample_prompts_are_checked(tmp_path):
    with pytest.raises(ConfigError) as err:
        config_from_dict({"data": "d", "sample_every": -1, "sample_prompts": [{"image": "a.png"}]})
    assert {p.field for p in err.value.problems} == {"sample_every", "sample_prompts"}
    with pytest.raises(ConfigError, match="list of"):
        config_from_dict({"data": "d", "sample_prompts": ["a.png | a prompt"]})
    cfg = config_from_dict(
        {"data": "d", "sample_every": 1, "sample_prompts": [{"image": str(tmp_path / "gone.png"), "prompt": "a robot"}]}
    )
    with pytest.raises(ValueError, match=r"^sample_prompts: the first frame .*gone.png does not exist"):
        sample_prompts(cfg)


def test_sample_prompts_are_bounded():
    from trainer.spec.bounds import MAX_SAMPLE_PROMPTS

    pairs = [{"image": f"frame{i}.png", "prompt": "a robot"} for i in range(MAX_SAMPLE_PROMPTS)]
    assert len(config_from_dict({"data": "d", "sample_prompts": pairs}).sample_prompts) == MAX_SAMPLE_PROMPTS
    with pytest.raises(ConfigError) as err:
        config_from_dict({"data": "d", "sample_prompts": pairs * 1000})
    assert [str(p) for p in err.value.problems] == [
        f"sample_prompts: at most {MAX_SAMPLE_PROMPTS} samples, each rendered at every sample step (got "
        f"{MAX_SAMPLE_PROMPTS * 1000}); keep the ones to compare"
    ]


def test_two_processes_sample_once_the_other_waiting(tmp_path, clip_dataset):
    from test_accelerate import _launch

    cfg = write_config(
        tmp_path / "c.json",
        tiny_config(clip_dataset, tmp_path / "runs", name="ddp", max_steps=2, sample_every=2, cache="auto"),
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    result = _launch(
        ["--multi_gpu", "--num_processes", "2", "--mixed_precision", "no", "--main_process_port", port],
        cfg,
        {"ACCELERATE_USE_CPU": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "runs" / "ddp"
    events = read_events(run)
    assert [e["step"] for e in events if e["event"] == "sample"] == [0, 2]  # written once, by the main process
    assert sorted(p.name for p in (run / SAMPLES_DIR / "step-2").iterdir()) == [
        "sample-0.mp4",
        "sample-1.mp4",
        SAMPLE_RECORD_FILE,
    ]
    done = events[-1]
    assert done["event"] == "done" and done["process_checksums"][0] == done["process_checksums"][1]


def test_a_missing_first_frame_stops_the_run_before_the_model_loads(tmp_path, clip_dataset):
    cfg = tiny_config(
        clip_dataset,
        tmp_path / "runs",
        name="bad",
        sample_every=1,
        sample_prompts=[{"image": str(tmp_path / "gone.png"), "prompt": "a robot"}],
    )
    result = run_trainer("train", "--config", str(write_config(tmp_path / "bad.json", cfg)))
    assert result.returncode == 1
    status = json.loads((tmp_path / "runs" / "bad" / "status.json").read_text())
    assert status["state"] == "failed" and status["error"].startswith("sample_prompts: the first frame")
    assert "loading tiny" not in (tmp_path / "runs" / "bad" / "train.log").read_text()


@pytest.mark.parametrize("content", [b"not an image", None])
def test_a_first_frame_that_is_no_image_or_too_large_is_refused_before_training(tmp_path, content, monkeypatch):
    from PIL import Image

    frame = tmp_path / "frame.png"
    if content is None:  # a real image over the pixel bound (lowered here so the test stays small)
        Image.new("RGB", (40, 30)).save(frame)
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    else:
        frame.write_bytes(content)
    cfg = config_from_dict(
        tiny_config(
            tmp_path,
            tmp_path / "runs",
            name="r",
            sample_every=1,
            sample_prompts=[{"image": str(frame), "prompt": "a robot"}],
        )
    )
    with pytest.raises(ValueError, match=r"sample_prompts: the first frame .*frame.png is not an image of at most"):
        sample_prompts(cfg)
