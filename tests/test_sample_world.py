"""The procedural sample worlds: deterministic frames, disjoint splits, honest captions, a working hand scorer."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from trainer.tinyworld import hand_scorer, robot_world, sample_datasets, shapes_world

REPO = Path(__file__).resolve().parents[1]
SCORED_CLIPS = 200
MIN_SCORER_ACCURACY = 0.95
MIN_MP4_PSNR_DB = 28.0  # H.264 4:2:0 at CRF 10 measured ~29.7 dB on 64x64 robot clips (chroma subsampling bound)


def _read_mp4(path: Path) -> np.ndarray:
    reader = imageio_ffmpeg.read_frames(str(path))
    width, height = next(reader)["size"]
    return np.stack([np.frombuffer(frame, np.uint8).reshape(height, width, 3) for frame in reader])


@pytest.fixture(scope="module")
def robot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("robot")
    sample_datasets.make_robot_dataset(out, train_clips=8, held_out_clips=4, seed=3)
    return out


@pytest.mark.parametrize("size,num_frames", [(64, 17), (96, 33), (64, 9)])
def test_robot_frames_have_the_requested_shape_and_dtype(size: int, num_frames: int) -> None:
    frames = robot_world.render_robot_clip(robot_world.sample_robot_clip(5, size, num_frames))
    assert frames.shape == (num_frames, size, size, 3)
    assert frames.dtype == np.uint8


def test_same_seed_gives_identical_frames_and_another_seed_does_not() -> None:
    worlds = (
        (robot_world.sample_robot_clip, robot_world.render_robot_clip),
        (shapes_world.sample_shapes_clip, shapes_world.render_shapes_clip),
    )
    for sample, render in worlds:
        first, again, other = (render(sample(seed)) for seed in (11, 11, 12))
        assert np.array_equal(first, again)
        assert not np.array_equal(first, other)


def test_dataset_writing_is_deterministic(robot_dir: Path, tmp_path: Path) -> None:
    """Writing the same dataset twice gives the same bytes in every file: videos, captions, manifest, README."""
    again = sample_datasets.make_robot_dataset(tmp_path, train_clips=8, held_out_clips=4, seed=3)
    assert again == json.loads((robot_dir / "manifest.json").read_text())
    files = sorted(p.relative_to(robot_dir) for p in robot_dir.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert sum(1 for f in files if f.suffix == ".mp4") == 12
    differing = [f for f in files if (robot_dir / f).read_bytes() != (tmp_path / f).read_bytes()]
    assert differing == []


def test_robot_dataset_has_the_canonical_layout_per_split(robot_dir: Path) -> None:
    assert (robot_dir / "README.md").read_text().startswith("# Sample robot world")
    manifest = json.loads((robot_dir / "manifest.json").read_text())
    for split, count in (("train", 8), ("held_out", 4)):
        keys = [entry["key"] for entry in manifest["splits"][split]]
        assert sorted(p.stem for p in (robot_dir / split / "videos").glob("*.mp4")) == sorted(keys)
        assert sorted(p.stem for p in (robot_dir / split / "metas").glob("*.txt")) == sorted(keys)
        assert len(keys) == count


def _params(entry: dict) -> str:
    """A manifest entry without its key (the key differs between splits by construction)."""
    return json.dumps({name: value for name, value in entry.items() if name != "key"}, sort_keys=True)


def test_splits_share_no_clip(robot_dir: Path) -> None:
    splits = json.loads((robot_dir / "manifest.json").read_text())["splits"]
    train, held_out = splits["train"], splits["held_out"]
    assert not {e["seed"] for e in train} & {e["seed"] for e in held_out}
    assert not {_params(e) for e in train} & {_params(e) for e in held_out}
    train_frames = [robot_world.render_robot_clip(robot_world.sample_robot_clip(e["seed"])) for e in train]
    for entry in held_out:
        frames = robot_world.render_robot_clip(robot_world.sample_robot_clip(entry["seed"]))
        assert not any(np.array_equal(frames, seen) for seen in train_frames)


def test_captions_name_object_colour_hand_and_bowl_and_match_the_manifest(robot_dir: Path) -> None:
    for split, entries in json.loads((robot_dir / "manifest.json").read_text())["splits"].items():
        for entry in entries:
            caption = (robot_dir / split / "metas" / f"{entry['key']}.txt").read_text().strip()
            assert caption == entry["caption"]
            assert f"The {entry['hand']} arm" in caption
            assert f"{entry['colour']} {entry['object']}" in caption
            assert caption.endswith("in the bowl.")
            assert robot_world.OBJECT_KINDS[entry["object"]].colour == entry["colour"]


def test_hands_and_middle_band_are_balanced() -> None:
    clips = [robot_world.sample_robot_clip(seed) for seed in range(SCORED_CLIPS)]
    middle = [clip for clip in clips if clip.band == "middle"]
    assert 0.35 < len(middle) / len(clips) < 0.65
    assert {clip.hand for clip in middle} == {"left", "right"}  # the first frame cannot tell which hand
    assert all(clip.band == clip.hand for clip in clips if clip.band != "middle")
    assert 0.4 < sum(clip.hand == "left" for clip in clips) / len(clips) < 0.6


def test_hand_track_moves_only_the_named_hand_to_the_object_and_the_bowl() -> None:
    clip = robot_world.sample_robot_clip(7)
    track = robot_world.hand_position_track(clip)
    idle = "right" if clip.hand == "left" else "left"
    assert track[clip.hand].shape == track[idle].shape == (clip.num_frames, 2)
    assert np.ptp(track[idle], axis=0).max() == 0
    for visited in (clip.target.position, clip.bowl):  # frame units; the track is in pixels
        assert np.linalg.norm(track[clip.hand] - np.array(visited) * clip.size, axis=1).min() < 1e-6


def test_which_hand_moved_is_right_on_ground_truth_clips() -> None:
    clips = [robot_world.sample_robot_clip(seed) for seed in range(SCORED_CLIPS)]
    correct = sum(hand_scorer.which_hand_moved(robot_world.render_robot_clip(clip)) == clip.hand for clip in clips)
    assert correct / len(clips) >= MIN_SCORER_ACCURACY


def test_which_hand_moved_is_unclear_when_nothing_moves() -> None:
    still = np.repeat(robot_world.render_robot_clip(robot_world.sample_robot_clip(4))[:1], 17, axis=0)
    assert hand_scorer.which_hand_moved(still) == "unclear"


def test_mp4_keeps_the_exact_size_and_enough_detail_to_score(robot_dir: Path) -> None:
    entry = json.loads((robot_dir / "manifest.json").read_text())["splits"]["train"][0]
    expected = robot_world.render_robot_clip(robot_world.sample_robot_clip(entry["seed"]))
    decoded = _read_mp4(robot_dir / "train" / "videos" / f"{entry['key']}.mp4")
    assert decoded.shape == expected.shape
    mse = np.mean((decoded.astype(np.float64) - expected) ** 2)
    assert 10 * np.log10(255**2 / mse) > MIN_MP4_PSNR_DB
    assert hand_scorer.which_hand_moved(decoded) == entry["hand"]


def test_shapes_world_never_mentions_the_robot_world(tmp_path: Path) -> None:
    manifest = sample_datasets.make_shapes_dataset(tmp_path, clips=40, seed=1)
    forbidden = re.compile(r"\b(robot|arms?|bowl|table|gripper|hand)\b", re.IGNORECASE)
    for entry in manifest["clips"]:
        caption = (tmp_path / "metas" / f"{entry['key']}.txt").read_text().strip()
        assert caption == entry["caption"]
        assert not forbidden.search(caption), caption
        assert all(f"{shape['colour']} {shape['kind']}" in caption for shape in entry["shapes"])
    assert len(list((tmp_path / "videos").glob("*.mp4"))) == 40
    assert not forbidden.search((tmp_path / "README.md").read_text().replace("no robot, table or bowl", ""))


def test_shapes_stay_inside_the_frame_and_captions_report_bounces() -> None:
    for seed in range(100):
        clip = shapes_world.sample_shapes_clip(seed)
        for shape in clip.shapes:
            centres, radii, walls = shapes_world.shape_track(shape, clip.num_frames)
            assert (centres - radii[:, None] >= -1e-9).all() and (centres + radii[:, None] <= 1 + 1e-9).all()
            if walls:
                assert f"bounces off the {walls[0]} wall" in shapes_world.shapes_caption(clip)


@pytest.mark.parametrize("size,num_frames", [(50, 17), (64, 16), (64, 5)])
def test_invalid_clip_shapes_are_refused_by_name(size: int, num_frames: int) -> None:
    with pytest.raises(ValueError, match="size|num_frames"):
        robot_world.sample_robot_clip(0, size, num_frames)


def _cli(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "trainer", "make-sample-data", *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)


def test_cli_writes_the_robot_dataset(tmp_path: Path) -> None:
    out = tmp_path / "robot"
    result = _cli(str(out), "--clips", "3", "--held-out", "2", "--seed", "5")
    assert result.returncode == 0, result.stderr
    for split, count in (("train", 3), ("held_out", 2)):
        assert len(list((out / split / "videos").glob("*.mp4"))) == count
        assert len(list((out / split / "metas").glob("*.txt"))) == count
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 5 and len(manifest["splits"]["held_out"]) == 2
    assert (out / "README.md").is_file()


def test_cli_rejects_a_size_that_is_not_a_multiple_of_16(tmp_path: Path) -> None:
    result = _cli(str(tmp_path / "bad"), "--size", "50")
    assert result.returncode == 2
    assert "--size must be a positive multiple of 16" in result.stderr
    assert not (tmp_path / "bad").exists()
