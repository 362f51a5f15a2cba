"""The Train tab's sample strip and curve marks, read from a run folder's events and files (no trainer run)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from studio import previews
from studio.previews import GAP_PX, enlarged, filmstrip_frames
from studio.run_samples import sample_strip
from studio.workspace import open_studio
from trainer.spec.config import TrainConfig, save_config
from trainer.spec.run_folder import CONFIG_FILE, EventWriter, RunState, Status, write_status
from trainer.video import read_frames, stream_info, write_video


def _write_run(ws, name="sampled", steps=(0, 2, 4, 6, 8)):
    run = ws / "runs" / name
    run.mkdir(parents=True)
    save_config(TrainConfig(data="sample", name=name, output_dir=str(ws / "runs")), run / CONFIG_FILE)
    write_status(run, Status(RunState.FINISHED, step=8, total=8))
    events = EventWriter(run)
    events.emit("start", run=name, total_steps=8, resumed_from=0)
    for step in range(1, 9):
        events.emit("step", step=step, loss=1.0 / step, lr=1e-3)
        if step == 4:
            events.emit("checkpoint", step=4, path="elsewhere")
    for step in steps:
        folder = run / "samples" / f"step-{step}"
        folder.mkdir(parents=True)
        for i in range(2):
            write_video(folder / f"sample-{i}.mp4", np.full((5, 16, 16, 3), 10 * step + i, np.uint8), 8)
        # the path is only informative: the studio reads the run's own samples/ folder
        events.emit(
            "sample",
            step=step,
            path="/etc",
            videos=["sample-0.mp4", "sample-1.mp4"],
            prompts=["left arm", "right arm"],
            seconds=0.1,
        )
    return run


@pytest.fixture
def studio(tmp_path):
    s = open_studio(tmp_path / "ws")
    yield s
    s.close()


def test_tick_returns_the_strip_as_filmstrips_a_row_per_step(studio):
    from studio.tab_train_runs import TICK_OUTPUTS, tick

    _write_run(studio.workspace.root, steps=(0, 2, 4, 6, 8, 10, 12))
    shown = tick(studio, "sampled", None)
    assert "samples" in TICK_OUTPUTS
    strip = shown["samples"]["value"]
    assert shown["samples"]["columns"] == 2  # a row per step: its two prompts side by side
    # the first sampled step and the latest five (the CPU preset samples 5 steps: all shown)
    assert [caption for _, caption in strip] == [
        f"{label} · {arm} arm"
        for label in ("base (step 0)", "step 4", "step 6", "step 8", "step 10", "step 12")
        for arm in ("left", "right")
    ]
    served = studio.workspace.gradio_temp / "samples" / "sampled"
    assert [p for p, _ in strip][:2] == [
        str(served / "step-0" / "sample-0.png"),
        str(served / "step-0" / "sample-1.png"),
    ]
    run = studio.workspace.runs / "sampled"
    for picture, _ in strip:  # each a filmstrip of the served copy of the run's own video: 5 frames of 16 px
        video = served / picture.split("/")[-2] / picture.split("/")[-1].replace(".png", ".mp4")
        assert video.read_bytes() == (run / "samples" / video.parent.name / video.name).read_bytes()
        assert Image.open(picture).size == (5 * 16 + 4 * GAP_PX, 16)
    step = int(strip[-1][0].split("/")[-2].removeprefix("step-"))
    assert abs(int(np.asarray(Image.open(strip[-1][0]))[8, 8, 0]) - (10 * step + 1)) <= 3  # the video's colour


def test_filmstrips_take_the_first_last_and_evenly_spaced_frames():
    assert filmstrip_frames(17) == [0, 4, 8, 12, 16]
    assert filmstrip_frames(9) == [0, 2, 4, 6, 8]
    assert filmstrip_frames(3) == [0, 1, 2]


def test_a_small_video_plays_enlarged_with_square_pixels_and_a_large_one_as_it_is(tmp_path, monkeypatch):
    """A 64x64 clip with a hard edge comes back 4x larger with the edge still hard (each pixel a 4x4 block, no
    blend between them), made once per version of the clip; a clip large enough, or too long to enlarge within
    the memory budget, is served as it is."""
    frames = np.zeros((5, 64, 64, 3), np.uint8)
    frames[:, :, 32:] = 255  # dark left half, white right half
    clip = tmp_path / "clips" / "small.mp4"
    clip.parent.mkdir()
    write_video(clip, frames, 8.0)
    serve = tmp_path / "serve"

    shown = enlarged(clip, serve)
    assert shown.parent.parent == serve and shown.name == "small.x4.mp4" and stream_info(shown) == (256, 256, 8.0)
    big = read_frames(shown)
    assert len(big) == 5
    row = big[0, 128, :, 1].astype(int)  # green across the middle row
    assert row[:124].max() < 20 and row[132:].min() > 235, row[120:136]
    assert row[127] < 40 and row[128] > 215, row[120:136]  # stretched bilinearly, these two would be 96 and 159
    assert enlarged(clip, serve) == shown and shown.stat().st_mtime >= clip.stat().st_mtime  # made once
    # the page asks for the same clip from two events at once: every caller gets the enlarged copy
    with ThreadPoolExecutor(4) as pool:
        assert set(pool.map(lambda _: enlarged(clip, tmp_path / "serve-2"), range(4))) == {
            tmp_path / "serve-2" / shown.relative_to(serve)
        }

    monkeypatch.setattr(previews, "ENLARGE_BUDGET_BYTES", 4 * 256 * 256 * 3)  # 4 enlarged frames: the clip has 5
    assert enlarged(clip, tmp_path / "serve-3") == clip and not (tmp_path / "serve-3").exists()

    large = tmp_path / "clips" / "large.mp4"
    write_video(large, np.zeros((3, 256, 320, 3), np.uint8), 8.0)
    assert enlarged(large, serve) == large
    assert enlarged(tmp_path / "clips" / "gone.mp4", serve) == tmp_path / "clips" / "gone.mp4"


def test_sample_and_checkpoint_steps_are_marked_on_the_smoothed_loss(studio):
    from studio.tab_train_runs import tick

    _write_run(studio.workspace.root)
    plot = tick(studio, "sampled", None)["loss_plot"]
    marks = {series: plot[plot["series"] == series] for series in ("samples", "checkpoints")}
    # each mark is a vertical tick: two points at its step, then a gap that breaks the line before the next
    assert marks["samples"]["step"].tolist() == [s for s in (0, 2, 4, 6, 8) for _ in range(3)]
    assert marks["checkpoints"]["step"].tolist() == [4, 4, 4]
    smoothed = plot[plot["series"] == "smoothed (EMA)"].set_index("step")["loss"]
    low, high, gap = marks["checkpoints"]["loss"].tolist()
    assert (low + high) / 2 == pytest.approx(smoothed[4]) and high > low and np.isnan(gap)
    low, high, _ = marks["samples"]["loss"].tolist()[:3]
    assert (low + high) / 2 == pytest.approx(smoothed[1])  # step 0: at the first loss


def test_a_rewritten_sample_is_copied_again_and_a_missing_one_left_out(tmp_path):
    run = _write_run(tmp_path / "ws", steps=(0, 2))
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    serve = tmp_path / "served"
    first = dict(sample_strip(run, events, serve))
    write_video(run / "samples" / "step-2" / "sample-0.mp4", np.full((5, 16, 16, 3), 200, np.uint8), 8)
    (run / "samples" / "step-2" / "sample-1.mp4").unlink()
    second = dict(sample_strip(run, events, serve))
    assert len(first) == 4 and len(second) == 3
    path = serve / run.name / "step-2" / "sample-0.mp4"
    assert path.read_bytes() == (run / "samples" / "step-2" / "sample-0.mp4").read_bytes()
    assert abs(int(np.asarray(Image.open(path.with_suffix(".png")))[8, 8, 0]) - 200) <= 3  # the strip made again


def test_the_form_edits_sample_prompts_as_image_prompt_lines():
    from studio.train_form import field_kind, from_form, to_form

    pairs = [{"image": "datasets/a/first.png", "prompt": "the left arm, then the right"}]
    assert field_kind("sample_prompts") == "pairs"
    assert to_form("sample_prompts", pairs) == "datasets/a/first.png | the left arm, then the right"
    assert from_form("sample_prompts", to_form("sample_prompts", pairs) + "\n\n") == pairs
    with pytest.raises(ValueError, match="one 'first-frame.png | prompt' per line"):
        from_form("sample_prompts", "first.png without a prompt")


def test_sample_frames_are_pinned_inside_the_workspace(tmp_path):
    from studio.paths import PathPolicy, PathRefused

    policy = PathPolicy(tmp_path / "ws")

    def cfg(*pairs: dict, every: int = 1) -> SimpleNamespace:  # the two fields of a TrainConfig it reads
        return SimpleNamespace(sample_prompts=list(pairs), sample_every=every)

    with pytest.raises(
        PathRefused,
        match=r"^sample_prompts: the first frame datasets/a/first.png does not exist; "
        r"give an image or video that does, or leave sample_prompts empty",
    ):
        policy.sample_frames(cfg({"image": "datasets/a/first.png", "prompt": "p"}))
    assert policy.sample_frames(cfg({"image": "datasets/a/first.png", "prompt": "p"}, every=0))  # samples off
    (tmp_path / "ws" / "datasets" / "a").mkdir(parents=True)
    (tmp_path / "ws" / "datasets" / "a" / "first.png").write_bytes(b"png")
    pinned = policy.sample_frames(cfg({"image": "datasets/a/first.png", "prompt": "p"}))
    assert pinned == [{"image": str(tmp_path / "ws" / "datasets" / "a" / "first.png"), "prompt": "p"}]
    with pytest.raises(PathRefused, match=r"^sample_prompts: the first frame .* is outside the workspace"):
        policy.sample_frames(cfg({"image": "/etc/passwd", "prompt": "p"}))


def test_the_adapters_tab_shows_its_runs_first_and_last_samples(studio):
    from adapterfactory import make_adapter

    from studio.tab_adapters import show

    run = _write_run(studio.workspace.root)
    make_adapter(run / "adapter")
    pictures = show(studio, "sampled")["samples"]
    assert [caption for _, caption in pictures] == [
        "base (step 0) · left arm",
        "base (step 0) · right arm",
        "step 8 · left arm",
        "step 8 · right arm",
    ]
    assert all(picture.endswith(".png") for picture, _ in pictures)


def test_picked_variants_show_their_runs_samples_at_their_step(studio):
    from studio.tab_generate_variants import variant_samples
    from trainer.spec.run_folder import CHECKPOINT_DONE_MARK, WEIGHTS_FILE

    run = _write_run(studio.workspace.root)
    for folder in (run / "checkpoints" / "step-5", run / "adapter", studio.workspace.adapters / "imported"):
        folder.mkdir(parents=True)
        (folder / WEIGHTS_FILE).write_bytes(b"weights")  # listing reads no weights
    (run / "checkpoints" / "step-5" / CHECKPOINT_DONE_MARK).write_text("")
    shown = variant_samples(studio, ["sampled@step-5", "sampled", "imported", "gone@step-9"])
    # the run's base row once, then each variant at its step: a checkpoint at the last sample before it
    assert [caption for _, caption in shown["value"]] == [
        f"{label} · {arm} arm"
        for label in ("sampled · base (step 0)", "sampled@step-5 · step 4", "sampled · step 8")
        for arm in ("left", "right")
    ]
    assert shown["visible"] and all(
        Image.open(picture).size == (5 * 16 + 4 * GAP_PX, 16) for picture, _ in shown["value"]
    )
    assert variant_samples(studio, ["imported"]) == {"__type__": "update", "value": [], "visible": False}
