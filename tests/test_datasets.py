"""The dataset layer: mp4 I/O, layout detection, per-clip checks, check-data and import-data."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.datafactory import (
    canonical_dataset,
    captions_json_dataset,
    moving_gradient,
    write_clip,
    write_corrupt_clip,
    write_text,
)
from trainer.__main__ import main as trainer_main
from trainer.datasets import DatasetError, Layout, check_items, dataset_fingerprint, detect_layout, list_items
from trainer.video import VideoError, probe_video, read_frames, write_video

REPO = Path(__file__).resolve().parents[1]


def captions(items) -> dict[str, str | None]:
    return {item.key: item.caption for item in items}


# --- video -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("height,width", [(32, 32), (64, 64), (72, 96)])
def test_write_then_read_keeps_exact_size_and_frame_count(tmp_path, height, width):
    frames = moving_gradient(17, height, width)
    write_video(tmp_path / "clip.mp4", frames, fps=16)

    info = probe_video(tmp_path / "clip.mp4")
    back = read_frames(tmp_path / "clip.mp4")

    assert (info.frames, info.width, info.height, info.fps) == (17, width, height, 16.0)
    assert back.shape == (17, height, width, 3) and back.dtype == np.uint8
    assert np.abs(back.astype(int) - frames).mean() < 4  # lossy, but the same picture


def test_read_frames_returns_the_exact_window(tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", frames=13)
    everything = read_frames(clip)

    window = read_frames(clip, start=3, count=4)

    assert window.shape[0] == 4
    np.testing.assert_array_equal(window, everything[3:7])
    with pytest.raises(VideoError, match=r"ends before frame 15 \(frames 10 to 14 were asked for\)"):
        read_frames(clip, start=10, count=5)
    assert read_frames(clip, start=20).shape == (0, 32, 32, 3)


def test_write_video_refuses_sizes_yuv420p_cannot_hold(tmp_path):
    with pytest.raises(ValueError, match="must be even"):
        write_video(tmp_path / "odd.mp4", np.zeros((3, 31, 32, 3), np.uint8), fps=16)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("kind,save", [("PNG", "PNG"), ("JPEG", "JPEG")])
def test_an_image_renamed_mp4_is_named_as_an_image_not_a_short_clip(tmp_path, kind, save):
    from PIL import Image

    clip = tmp_path / "photo.mp4"
    Image.new("RGB", (32, 32), (200, 30, 30)).save(clip, format=save)
    with pytest.raises(VideoError) as caught:
        probe_video(clip)
    assert str(caught.value) == (
        f"{clip}: is a {kind} image, not a video; convert the clip to mp4, or use the image "
        "as a first frame in Generate."
    )
    reports = check_items(list_items(_one_clip_dataset(tmp_path, clip)), num_frames=9)
    assert reports[0].problem == f"unreadable video: is a {kind} image, not a video"


def _one_clip_dataset(tmp_path, video):
    root = tmp_path / "ds"
    (root / "videos").mkdir(parents=True)
    (root / "metas").mkdir()
    video.rename(root / "videos" / video.name)
    (root / "metas" / f"{video.stem}.txt").write_text("A photo.")
    return root


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_probe_names_an_unreadable_file(tmp_path, damage):
    if damage == "garbage":
        clip = write_corrupt_clip(tmp_path / "bad.mp4")
    else:
        clip = write_clip(tmp_path / "bad.mp4", frames=17)
        clip.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])

    with pytest.raises(VideoError) as caught:
        probe_video(clip)

    assert str(clip) in str(caught.value) and "re-encode it" in str(caught.value)
    assert caught.value.reason.startswith("does not decode cleanly")


# --- layouts ---------------------------------------------------------------------------------------
def test_canonical_layout(tmp_path):
    canonical_dataset(tmp_path, {"a": "  a red cube\n", "b": "a blue ball"})
    write_corrupt_clip(tmp_path / "videos" / "._a.mp4")  # a macOS resource fork, not a clip

    items = list_items(tmp_path, prompt_prefix="Robot. ")

    assert detect_layout(tmp_path) is Layout.CANONICAL
    assert captions(items) == {"a": "Robot. a red cube", "b": "Robot. a blue ball"}
    assert items[0].video == tmp_path / "videos" / "a.mp4"


def test_captions_json_layout_picks_the_variant(tmp_path):
    nested = {"qwen3_vl_30b_a3b": {"long": "long one", "medium": "medium one", "short": "short one"}}
    captions_json_dataset(
        tmp_path,
        {
            "nested": nested,
            "flat": {"long_prompt": "flat long", "short_prompt": "flat short"},
            "single": {"caption": "the only caption"},
        },
    )

    assert detect_layout(tmp_path) is Layout.CAPTIONS_JSON
    assert captions(list_items(tmp_path)) == {"flat": "flat long", "nested": "long one", "single": "the only caption"}
    medium = {item.key: item for item in list_items(tmp_path, caption_variant="medium")}
    assert medium["nested"].caption == "medium one"
    assert medium["single"].caption == "the only caption"
    assert medium["flat"].caption is None  # never silently another variant
    assert "captions/flat.json has no 'medium' prompt, only long, short" in medium["flat"].caption_problem


def test_metadata_csv_layout_like_gr1(tmp_path):
    write_clip(tmp_path / "gr1" / "ep1.mp4")
    write_clip(tmp_path / "gr1" / "ep2.mp4")
    write_clip(tmp_path / "gr1" / "stray.mp4")
    write_text(
        tmp_path / "metadata.csv",
        'File_Name,Text\ngr1/ep1.mp4,"Pick the cube, then place it."\nep2.mp4,Open the drawer\n',
    )

    items = {item.key: item for item in list_items(tmp_path, prompt_prefix="The robot arm is performing a task. ")}

    assert detect_layout(tmp_path) is Layout.METADATA_CSV
    assert items["ep1"].caption == "The robot arm is performing a task. Pick the cube, then place it."
    assert items["ep2"].caption == "The robot arm is performing a task. Open the drawer"
    assert items["ep2"].video == tmp_path / "gr1" / "ep2.mp4"  # matched by file name when the path differs
    assert items["stray"].caption is None and "not listed in metadata.csv" in items["stray"].caption_problem


def test_metadata_csv_with_unknown_columns_says_which_it_needs(tmp_path):
    write_clip(tmp_path / "a.mp4")
    write_text(tmp_path / "metadata.csv", "clip,words\na.mp4,hello\n")

    with pytest.raises(DatasetError, match=r"has columns \['clip', 'words'\]; it needs a video column"):
        list_items(tmp_path)


def test_flat_layout(tmp_path):
    write_clip(tmp_path / "one.mp4")
    write_text(tmp_path / "one.txt", "first clip")
    write_clip(tmp_path / "two.mp4")

    items = {item.key: item for item in list_items(tmp_path)}

    assert detect_layout(tmp_path) is Layout.FLAT
    assert items["one"].caption == "first clip"
    assert items["two"].caption is None and items["two"].caption_problem == "missing caption (no two.txt)"


def test_a_folder_in_no_layout_is_one_clear_error(tmp_path):
    write_text(tmp_path / "notes.txt", "no clips here")

    with pytest.raises(DatasetError) as caught:
        detect_layout(tmp_path)

    message = str(caught.value)
    assert message.startswith(f"{tmp_path} matches no accepted dataset layout")
    assert "videos/*.mp4 + metas/*.txt" in message and "metadata.csv" in message and message.count(".") >= 1


# --- checks and fingerprint ------------------------------------------------------------------------
def bad_dataset(root: Path) -> Path:
    """One usable clip and one of each problem."""
    canonical_dataset(root, {"good": "fine", "uncaptioned": None}, frames=17)
    write_clip(root / "videos" / "short.mp4", frames=9)
    write_text(root / "metas" / "short.txt", "too few frames")
    write_corrupt_clip(root / "videos" / "corrupt.mp4")
    write_text(root / "metas" / "corrupt.txt", "cannot be decoded")
    return root


def test_check_items_names_each_problem(tmp_path):
    reports = {r.key: r for r in check_items(list_items(bad_dataset(tmp_path)), num_frames=17, height=64, width=64)}

    assert reports["good"].problem is None and reports["good"].usable
    assert (reports["good"].frames, reports["good"].width, reports["good"].height) == (17, 32, 32)
    assert reports["good"].note == "smaller than 64x64: will be upscaled"  # reported, not a problem
    assert reports["short"].problem == "too short: 9 frames, needs 17"
    assert reports["corrupt"].problem.startswith("unreadable video: does not decode cleanly")
    assert reports["corrupt"].frames is None
    assert reports["uncaptioned"].problem == "missing caption (no metas/uncaptioned.txt)"


def test_fingerprint_hashes_clips_and_captions(tmp_path):
    canonical_dataset(tmp_path, {"a": "one", "b": "two"})
    before = dataset_fingerprint(list_items(tmp_path))
    assert dataset_fingerprint(list_items(tmp_path)) == before  # stable

    write_text(tmp_path / "metas" / "b.txt", "changed")
    after = dataset_fingerprint(list_items(tmp_path))

    entry = before["items"][0]
    assert entry["video_sha256"] == hashlib.sha256((tmp_path / "videos" / "a.mp4").read_bytes()).hexdigest()
    assert entry["caption_sha256"] == hashlib.sha256(b"one").hexdigest()
    assert before["count"] == 2 and len(before["digest"]) == 64
    assert before["digest"] != after["digest"]
    assert before["items"][0] == after["items"][0]


# --- check-data ------------------------------------------------------------------------------------
def test_check_data_cli_names_every_bad_clip_and_exits_1(tmp_path):
    root = bad_dataset(tmp_path / "data")

    done = subprocess.run(
        [sys.executable, "-m", "trainer", "check-data", str(root), "--num-frames", "17"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 1, done.stderr
    bad_lines = {line.split(":")[0].strip(): line for line in done.stdout.splitlines() if line.startswith("  ")}
    assert "too short: 9 frames, needs 17" in bad_lines["videos/short.mp4"]
    assert "unreadable video" in bad_lines["videos/corrupt.mp4"]
    assert "missing caption (no metas/uncaptioned.txt)" in bad_lines["videos/uncaptioned.mp4"]
    assert "videos/good.mp4" not in bad_lines
    assert "4 clips in" in done.stdout and "1 usable, 3 not usable" in done.stdout


def test_check_data_json_and_clean_exit(tmp_path, capsys):
    canonical_dataset(tmp_path, {"a": "a long caption " * 10, "b": "short"})

    code = trainer_main(["check-data", str(tmp_path), "--json", "--num-frames", "9"])

    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["summary"] == {
        "path": str(tmp_path),
        "layout": "canonical",
        "clips": 2,
        "usable": 2,
        "not_usable": 0,
        "num_frames_checked": 9,
    }
    assert [(r["key"], r["frames"], r["usable"]) for r in report["items"]] == [("a", 9, True), ("b", 9, True)]


@pytest.mark.parametrize("make", ["missing", "no_layout"])
def test_check_data_usage_errors_exit_2_without_traceback(tmp_path, capsys, make):
    target = tmp_path / "nowhere"
    if make == "no_layout":
        write_text(target / "readme.md", "hello")

    code = trainer_main(["check-data", str(target)])

    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    expected = "does not exist" if make == "missing" else "matches no accepted dataset layout"
    assert str(target) in err and expected in err


# --- import-data -----------------------------------------------------------------------------------
def tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def test_import_folder_writes_the_canonical_layout(tmp_path, capsys):
    source = captions_json_dataset(tmp_path / "src", {"a": {"q": {"long": "x long", "short": "x short"}}})
    dest = tmp_path / "out" / "data"

    code = trainer_main(
        ["import-data", str(source), "--to", str(dest), "--caption-variant", "short", "--prompt-prefix", "P. "]
    )

    assert code == 0
    assert tree(dest) == {"videos", "metas", "videos/a.mp4", "metas/a.txt"}
    assert (dest / "metas" / "a.txt").read_text() == "P. x short\n"
    assert (dest / "videos" / "a.mp4").read_bytes() == (source / "videos" / "a.mp4").read_bytes()
    assert tree(tmp_path / "out") == {"data", *(f"data/{p}" for p in tree(dest))}  # nothing beside DIR
    assert "1 copied, 0 already there" in capsys.readouterr().out
    # importing again changes nothing and is not an error
    assert (
        trainer_main(
            ["import-data", str(source), "--to", str(dest), "--caption-variant", "short", "--prompt-prefix", "P. "]
        )
        == 0
    )
    assert "0 copied, 1 already there" in capsys.readouterr().out


def test_import_zip_wrapped_in_a_folder(tmp_path):
    source = canonical_dataset(tmp_path / "src" / "mydata", {"a": "one", "b": None})
    archive = tmp_path / "mydata.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(source.rglob("*")):
            zf.write(path, path.relative_to(tmp_path / "src").as_posix())
    dest = tmp_path / "out" / "data"

    code = trainer_main(["import-data", str(archive), "--to", str(dest)])

    assert code == 1  # b came without a caption: copied, and reported
    assert tree(dest) == {"videos", "metas", "videos/a.mp4", "videos/b.mp4", "metas/a.txt"}
    assert tree(tmp_path / "out") == {"data", *(f"data/{p}" for p in tree(dest))}  # unpack folder removed


def test_import_gr1_layout_reports_missing_and_uncaptioned_clips(tmp_path, capsys):
    source = tmp_path / "GR1-100"
    write_clip(source / "gr1" / "ep1.mp4")
    write_clip(source / "gr1" / "stray.mp4")
    write_text(source / "metadata.csv", "file_name,prompt\ngr1/ep1.mp4,Pick it up\ngr1/gone.mp4,Lost clip\n")
    dest = tmp_path / "data"

    code = trainer_main(["import-data", str(source), "--to", str(dest), "--prompt-prefix", "Robot. "])

    out = capsys.readouterr().out
    assert code == 1
    assert tree(dest) == {"videos", "metas", "videos/ep1.mp4", "videos/stray.mp4", "metas/ep1.txt"}
    assert (dest / "metas" / "ep1.txt").read_text() == "Robot. Pick it up\n"
    assert f"Not imported, the file is missing (1 clip):\n  {source / 'gr1' / 'gone.mp4'}" in out
    assert "videos/stray.mp4: missing caption (not listed in metadata.csv)" in out


@pytest.mark.parametrize("evil", ["../escaped.txt", "/tmp/escaped-absolute.txt", "videos/../../escaped.txt"])
def test_import_refuses_zip_slip(tmp_path, capsys, evil):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("videos/a.mp4", write_clip(tmp_path / "a.mp4").read_bytes())
        zf.writestr("metas/a.txt", "caption")
        zf.writestr(evil, "should never be written")
    dest = tmp_path / "work" / "data"

    code = trainer_main(["import-data", str(archive), "--to", str(dest)])

    assert code == 2
    assert "would be written outside" in capsys.readouterr().err
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "work" / "escaped.txt").exists()
    assert not Path("/tmp/escaped-absolute.txt").exists()
    assert not dest.exists() and tree(tmp_path / "work") == set()


def test_import_never_overwrites_what_is_not_a_dataset(tmp_path, capsys):
    source = canonical_dataset(tmp_path / "src", {"a": "one"})
    dest = tmp_path / "precious"
    write_text(dest / "thesis.txt", "do not touch")

    code = trainer_main(["import-data", str(source), "--to", str(dest)])

    assert code == 2 and "is not empty and is not a videos/ + metas/ dataset" in capsys.readouterr().err
    assert tree(dest) == {"thesis.txt"} and (dest / "thesis.txt").read_text() == "do not touch"


def test_import_refuses_a_name_taken_by_different_content(tmp_path, capsys):
    source = canonical_dataset(tmp_path / "src", {"a": "new caption"})
    dest = canonical_dataset(tmp_path / "dest", {"a": "old caption"})
    before = {p: p.read_bytes() for p in dest.rglob("*") if p.is_file()}

    code = trainer_main(["import-data", str(source), "--to", str(dest)])

    assert code == 2 and "already has different files under the same names" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in dest.rglob("*") if p.is_file()} == before


def test_import_from_hub_offline_says_so(tmp_path, capsys, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    dest = tmp_path / "data"

    code = trainer_main(["import-data", "nobody-here/no-such-dataset", "--to", str(dest)])

    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert "HF_HUB_OFFLINE is set" in err and "nobody-here/no-such-dataset" in err
    assert err.count("\n") == 1  # one sentence
    assert not dest.exists()
