"""import-data on LeRobot datasets (v2.1 and v3.0 layouts, built by tests/lerobot_fixture.py): clips, captions,
camera, held-out episodes, provenance, and the errors a user can cause."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.lerobot_fixture import CAMERAS, TASKS, colour, write_lerobot
from trainer.__main__ import main as trainer_main
from trainer.datasets import Layout, detect_layout, list_items
from trainer.lerobot import clip_starts, held_out_episodes
from trainer.video import read_frames

LENGTHS = (20, 12, 24, 7, 20, 16)  # write_lerobot's default episodes


@pytest.fixture(scope="module", params=["v2.1", "v3.0"])
def lerobot(request, tmp_path_factory) -> Path:
    return write_lerobot(tmp_path_factory.mktemp(request.param) / "so100_pick", request.param)


def keys(folder: Path) -> list[str]:
    return sorted(p.stem for p in (folder / "videos").glob("*.mp4"))


def mean_colour(video: Path, index: int) -> np.ndarray:
    return read_frames(video, index, 1)[0].reshape(-1, 3).mean(axis=0)


def test_episodes_are_cut_into_clips_captioned_with_their_task_and_split_by_episode(lerobot, tmp_path, capsys):
    dest = tmp_path / "pick"
    code = trainer_main(
        ["import-data", str(lerobot), "--to", str(dest), "--num-frames", "8", "--held-out-episodes", "2"]
    )

    out = capsys.readouterr().out
    assert code == 0, out
    # 8-frame windows: 20 -> 2 clips, 12 -> 1, 24 -> 3, 7 -> none, 20 -> 2, 16 -> 2. The two held-out episodes
    # are spread over the five long enough (1 and 4), and the skipped one is named.
    assert keys(dest) == [
        "episode_000000_000000",
        "episode_000000_000008",
        "episode_000002_000000",
        "episode_000002_000008",
        "episode_000002_000016",
        "episode_000005_000000",
        "episode_000005_000008",
    ]
    assert keys(dest / "held_out") == ["episode_000001_000000", "episode_000004_000000", "episode_000004_000008"]
    assert out.startswith(f"Imported 7 clips from 3 episodes of {lerobot} (LeRobot ")
    assert "3 clips from 2 held-out episodes" in out and "  episode 3: 7 frames, fewer than --num-frames 8" in out
    for folder in (dest, dest / "held_out"):
        assert detect_layout(folder) is Layout.CANONICAL
        for item in list_items(folder):
            assert item.caption == TASKS[int(item.key.split("_")[1]) % 2]  # episode e has task e % 2
    # The clip holds the episode's frames 8..15 of the first camera (flat colours survive the codecs).
    clip = dest / "held_out" / "videos" / "episode_000004_000008.mp4"
    assert len(read_frames(clip)) == 8
    assert np.abs(mean_colour(clip, 0) - colour(4, 8, 0)).max() < 4.5
    assert np.abs(mean_colour(clip, 7) - colour(4, 15, 0)).max() < 4.5

    train, held = (json.loads((d / "provenance.json").read_text()) for d in (dest, dest / "held_out"))
    version = json.loads((lerobot / "meta" / "info.json").read_text())["codebase_version"]
    assert (train["format"], train["codebase_version"], train["camera"]) == ("lerobot", version, CAMERAS[0])
    assert (train["source"], train["num_frames"], train["stride"]) == (str(lerobot.resolve()), 8, 8)
    assert (train["split"], train["episodes"], train["clips"]) == ("train", [0, 2, 5], 7)
    assert (held["split"], held["episodes"], held["clips"]) == ("held_out", [1, 4], 3)
    assert not set(train["episodes"]) & set(held["episodes"])
    assert train["not_imported"] == [{"episode": 3, "reason": "7 frames, fewer than --num-frames 8"}]


def test_camera_is_chosen_by_name_and_a_wrong_one_lists_the_cameras(lerobot, tmp_path, capsys):
    dest = tmp_path / "wrist"
    assert (
        trainer_main(["import-data", str(lerobot), "--to", str(dest), "--num-frames", "12", "--camera", "wrist"]) == 0
    )
    assert json.loads((dest / "provenance.json").read_text())["camera"] == "observation.images.wrist"
    assert np.abs(mean_colour(dest / "videos" / "episode_000002_000012.mp4", 0) - colour(2, 12, 1)).max() < 4.5

    code = trainer_main(["import-data", str(lerobot), "--to", str(tmp_path / "side"), "--camera", "side"])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        f"import-data: --camera 'side' is not a camera of {lerobot}; choose one of: "
        "observation.images.top, observation.images.wrist."
    )
    assert not (tmp_path / "side").exists()


@pytest.mark.parametrize("version", ["v2.1", "v3.0"])
def test_a_clip_is_captioned_with_the_task_of_most_of_its_frames(tmp_path, version):
    switch = lambda episode, frame: 1 if frame >= 10 else 0  # noqa: E731 - every episode changes task at frame 10
    source = write_lerobot(tmp_path / "src", version, lengths=(24,), frame_task=switch)
    dest = tmp_path / "out"
    assert trainer_main(["import-data", str(source), "--to", str(dest), "--num-frames", "8", "--stride", "4"]) == 0
    captions = {item.key: item.caption for item in list_items(dest)}
    # windows 0-7, 4-11 (6 frames of task 0), 8-15 (6 of task 1), 12-19, 16-23
    assert captions == {
        "episode_000000_000000": TASKS[0],
        "episode_000000_000004": TASKS[0],
        "episode_000000_000008": TASKS[1],
        "episode_000000_000012": TASKS[1],
        "episode_000000_000016": TASKS[1],
    }


def test_a_missing_video_is_named_and_the_other_episodes_are_imported(tmp_path, capsys):
    source = write_lerobot(tmp_path / "src", "v2.1", lengths=(9, 9, 9))
    missing = source / "videos" / "chunk-000" / CAMERAS[0] / "episode_000001.mp4"
    missing.unlink()
    dest = tmp_path / "out"
    code = trainer_main(["import-data", str(source), "--to", str(dest), "--num-frames", "9"])
    out = capsys.readouterr().out
    assert code == 1
    assert keys(dest) == ["episode_000000_000000", "episode_000002_000000"]
    assert f"  episode 1: {missing}: file not found (named by meta/info.json's video_path)" in out

    for video in missing.parent.glob("*.mp4"):
        video.unlink()
    assert trainer_main(["import-data", str(source), "--to", str(tmp_path / "none"), "--num-frames", "9"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"import-data: no training clip of {source} could be imported: episode 0: ")
    assert not (tmp_path / "none").exists()


def test_refusals_are_one_sentence_and_write_nothing(tmp_path, capsys):
    source = write_lerobot(tmp_path / "src", "v3.0", lengths=(9, 9))
    cases = [
        (
            [str(source), "--num-frames", "9", "--held-out-episodes", "2"],
            2,
            "--held-out-episodes 2 leaves no episode to train on (2 episodes have --num-frames frames); hold out fewer.",
        ),
        ([str(source)], 1, f"no episode of {source} has 93 frames (the longest has 9); lower --num-frames."),
        (
            [str(tmp_path), "--camera", "top"],
            2,
            f"--camera applies only to a LeRobot dataset folder (one with meta/info.json), and {tmp_path} is not one; "
            "leave it out.",
        ),
        (
            ["lerobot/pusht", "--camera", "top", "--num-frames", "9"],
            2,
            "--camera --num-frames apply only to a LeRobot dataset folder (one with meta/info.json), and lerobot/pusht "
            "is not one; download it first: hf download lerobot/pusht --repo-type dataset --local-dir FOLDER.",
        ),
    ]
    for args, exit_code, message in cases:
        assert trainer_main(["import-data", *args, "--to", str(tmp_path / "out")]) == exit_code
        assert capsys.readouterr().err.strip() == f"import-data: {message}"
        assert not (tmp_path / "out").exists()
        assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left

    info = json.loads((source / "meta" / "info.json").read_text())
    (source / "meta" / "info.json").write_text(json.dumps({**info, "codebase_version": "v1.6"}))
    assert trainer_main(["import-data", str(source), "--to", str(tmp_path / "out")]) == 2
    assert "codebase_version v1.6, which import-data does not read" in capsys.readouterr().err


def test_windows_and_held_out_choice():
    assert clip_starts(20, 8, 8) == [0, 8] and clip_starts(20, 8, 4) == [0, 4, 8, 12] and clip_starts(7, 8, 8) == []
    assert held_out_episodes([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 0.2) == [2, 7]  # spread, not the last two
    assert held_out_episodes([3, 5, 9], 1) == [5] and held_out_episodes([3, 5], 0) == []
