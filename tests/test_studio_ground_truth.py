"""The real clip beside the guesses: a generation that starts from a dataset clip's frame (or first clip) gets the
clip itself, from that frame on, at the generated size and length, as its own labelled column."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from conftest import write_clip_dataset

from studio import ground_truth
from studio import tab_generate_conditioning as conditioning
from studio.workspace import open_studio
from trainer.video import read_frames, write_video


def picks(studio):
    return studio.generation.out_root / conditioning.INPUTS_DIR


RECORD = {"width": 32, "height": 32, "num_frames": 5, "fps": 8, "variants": []}


@pytest.fixture
def studio(tmp_path):
    studio = open_studio(tmp_path / "ws")
    write_clip_dataset(studio.workspace.root / "datasets" / "boxes", clips=2, frames=13)
    yield studio
    studio.close()


def test_a_picked_frame_brings_its_real_clip_from_that_frame_on(studio, tmp_path):
    picked = conditioning.pick(studio, conditioning.FRAME, "datasets/boxes", "clip01", 3)
    upload_copy = tmp_path / "gradio-cache" / "image.png"  # the page hands the handler a copy, never the path
    upload_copy.parent.mkdir()
    shutil.copyfile(picked["image"], upload_copy)
    out = tmp_path / "generation"
    out.mkdir()
    shown = ground_truth.real_clip(studio.datasets, picks(studio), str(upload_copy), RECORD, out)
    assert shown == {"file": "real-clip.mp4", "label": "real clip: clip01 from frame 3"}
    real = read_frames(out / "real-clip.mp4")
    video, _ = studio.datasets.clip("datasets/boxes", "clip01")
    source = read_frames(video)[3:8]
    assert real.shape == (5, 32, 32, 3)  # the generated length and size
    assert np.abs(real[0].astype(int)[::2, ::2] - source[0].astype(int)[::4, ::4]).mean() < 25


def test_a_picked_clip_is_its_own_truth_and_an_upload_has_none(studio, tmp_path):
    picked = conditioning.pick(studio, conditioning.CLIP, "datasets/boxes", "clip00", 0)
    out = tmp_path / "g"
    out.mkdir()
    assert ground_truth.real_clip(studio.datasets, picks(studio), picked["video"], RECORD, out)["label"] == (
        "real clip: clip00 from frame 0"
    )
    other = tmp_path / "mine.mp4"
    write_video(other, np.zeros((5, 32, 32, 3), np.uint8), 8)
    assert ground_truth.real_clip(studio.datasets, picks(studio), str(other), RECORD, out) is None


def test_picks_are_bounded_and_the_newest_kept(tmp_path):
    for i in range(ground_truth.MAX_PICKS + 3):
        file = tmp_path / f"f{i}.png"
        file.write_bytes(str(i).encode())
        ground_truth.remember(tmp_path / "inputs", file, "d", f"c{i}", i)
    assert ground_truth.recall(tmp_path / "inputs", tmp_path / "f0.png") is None
    last = ground_truth.MAX_PICKS + 2
    assert ground_truth.recall(tmp_path / "inputs", tmp_path / f"f{last}.png") == {
        "dataset": "d",
        "clip": f"c{last}",
        "frame": last,
    }
