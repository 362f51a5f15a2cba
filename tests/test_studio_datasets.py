"""The Data tab's controller, studio.datasets: import through `trainer import-data`, check, preview, edit captions."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from studio.dataset_controller import REPORT_COLUMNS, DatasetController, default_import_name
from studio.folders import Refused, Workspace
from tests.datafactory import canonical_dataset, write_clip, write_corrupt_clip, write_text
from trainer.datasets import DatasetError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def data(tmp_path) -> DatasetController:
    # An operator's studio: it may import server folders (tests/test_studio_visitor.py covers a public one).
    return DatasetController(Workspace((tmp_path / "ws").resolve(), allow_local_folders=True))


def test_import_folder_into_the_workspace_and_list_it(data, tmp_path):
    src = canonical_dataset(tmp_path / "src", {"a": "A red box.", "b": "A blue box."})
    assert data.choices() == ["sample", "sample:held_out"]
    result = data.import_source(str(src), "boxes")
    assert (result.dataset, result.exit_code, result.details) == ("datasets/boxes", 0, [])
    assert result.message == "Imported 2 clips (canonical layout) into datasets/boxes: 2 copied, 0 already there."
    assert data.choices() == ["sample", "sample:held_out", "datasets/boxes"]
    assert data.path("datasets/boxes") == data.workspace / "datasets" / "boxes"
    assert (data.datasets_dir / "boxes" / "metas" / "b.txt").read_text().strip() == "A blue box."


def test_uploaded_files_are_imported_and_bad_items_are_reported_not_hidden(data, tmp_path):
    up = tmp_path / "upload"
    files = [
        write_clip(up / "one.mp4"),
        write_text(up / "one.txt", "Arm picks the cube."),
        write_clip(up / "two.MP4"),
        write_corrupt_clip(up / "bad.mp4"),
        write_text(up / "bad.txt", "Broken."),
    ]
    result = data.import_uploads([str(f) for f in files], "mine")
    assert result.exit_code == 1  # imported, but one clip came without a caption
    assert any("two.mp4" in line and "missing caption" in line for line in result.details)
    assert not [p for p in data.datasets_dir.iterdir() if p.name.startswith(".")]  # the staging folder is gone

    report = data.check("datasets/mine", num_frames=9)
    table = report.table()
    assert list(table.columns) == REPORT_COLUMNS
    rows = {row.file: row for row in table.itertuples()}
    assert set(rows) == {"videos/bad.mp4", "videos/one.mp4", "videos/two.mp4"}
    assert rows["videos/one.mp4"].problem == "ok" and rows["videos/one.mp4"].frames == 9
    assert (rows["videos/one.mp4"].resolution, rows["videos/one.mp4"].caption) == ("32x32", "Arm picks the cube.")
    assert rows["videos/bad.mp4"].problem.startswith("unreadable video")
    assert "missing caption" in rows["videos/two.mp4"].problem
    assert report.usable == 1 and report.summary().endswith("1 usable, 2 not usable (see the problem column).")
    assert report.keys() == ["bad", "one", "two"]
    too_short = data.check("datasets/mine", num_frames=17).table()
    assert too_short.loc[too_short.file == "videos/one.mp4", "problem"].item() == "too short: 9 frames, needs 17"


def test_uploaded_zip_is_imported(data, tmp_path):
    src = canonical_dataset(tmp_path / "src", {"a": "A red box."})
    archive = tmp_path / "clips.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for file in src.rglob("*"):
            zf.write(file, Path("clips") / file.relative_to(src))
    result = data.import_uploads([str(archive)], default_import_name(str(archive)))
    assert result.dataset == "datasets/clips" and result.exit_code == 0
    assert data.check("datasets/clips").usable == 1


def test_import_refusals_are_one_sentence(data, tmp_path):
    with pytest.raises(DatasetError, match=r"^Dataset name 'a b' can only use letters"):
        data.import_source(str(tmp_path), "a b")
    with pytest.raises(DatasetError, match=r"^missing is not a folder, a \.zip file or a Hub dataset id"):
        data.import_source(str(tmp_path / "missing"), "x")
    with pytest.raises(DatasetError, match=r"^Only \.mp4 clips and \.txt captions can be uploaded \(got notes\.pdf\)"):
        data.import_uploads([str(write_text(tmp_path / "notes.pdf", "x"))], "x")
    with pytest.raises(DatasetError, match="either one .zip or a set of"):
        data.import_uploads([str(tmp_path / "a.zip"), str(tmp_path / "b.mp4")], "x")
    with pytest.raises(DatasetError, match="matches no accepted dataset layout"):
        data.check(str(tmp_path))


def test_lerobot_folder_is_imported_with_its_camera_and_held_out_episodes(data, tmp_path):
    from tests.lerobot_fixture import TASKS, write_lerobot

    source = write_lerobot(tmp_path / "so100", "v2.1")
    result = data.import_lerobot(str(source), "so100", camera="wrist", num_frames=9, held_out=1)
    assert (result.dataset, result.exit_code) == ("datasets/so100", 0)
    assert result.message.startswith("Imported 6 clips from 4 episodes of")
    assert "camera observation.images.wrist" in result.message
    assert result.details == ["episode 3: 7 frames, fewer than --num-frames 9"]
    assert data.choices() == ["sample", "sample:held_out", "datasets/so100", "datasets/so100/held_out"]
    report = data.check("datasets/so100/held_out", num_frames=9)
    assert (report.keys(), report.usable) == (["episode_000002_000000", "episode_000002_000009"], 2)
    assert data.clip("datasets/so100/held_out", "episode_000002_000009")[1] == TASKS[0]
    with pytest.raises(DatasetError, match=r"not a LeRobot dataset folder \(one with meta/info\.json\); give the"):
        data.import_lerobot(str(tmp_path), "x")
    with pytest.raises(DatasetError, match=r"^--camera 'side' is not a camera of .*; choose one of: observation"):
        data.import_lerobot(str(source), "y", camera="side")


def test_sample_is_checked_in_place_and_read_only(data):
    report = data.check("sample", num_frames=9, height=64, width=64)
    table = report.table()
    assert len(table) == 48 and report.usable == 48 and report.layout == "canonical"
    assert set(table["resolution"]) == {"64x64"} and set(table["frames"]) == {17}
    assert table["caption"].str.len().min() > 10
    video, caption = data.clip("sample", report.keys()[0])
    assert video.is_file() and caption == table["caption"][0]
    with pytest.raises(Refused, match="built-in sample is read-only; import it to edit it"):
        data.save_caption("sample", report.keys()[0], "new")
    imported = data.import_source("sample", "robot")
    assert imported.message.startswith("Imported 48 clips") and data.check("datasets/robot").usable == 48


def test_caption_edit_is_saved_to_the_dataset(data, tmp_path):
    src = canonical_dataset(tmp_path / "src", {"a": "A red box.", "b": "A blue box."})
    data.import_source(str(src), "boxes")
    target = data.save_caption("datasets/boxes", "a", "  The left arm moves the red box.\n")
    assert target == data.datasets_dir / "boxes" / "metas" / "a.txt"
    assert target.read_text() == "The left arm moves the red box.\n"
    assert data.clip("datasets/boxes", "a")[1] == "The left arm moves the red box."
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.txt", "b.txt"]  # no temp file left
    with pytest.raises(DatasetError, match="caption of 'a' is empty"):
        data.save_caption("datasets/boxes", "a", "   ")
    with pytest.raises(DatasetError, match="has no clip 'zz'"):
        data.save_caption("datasets/boxes", "zz", "x")


def test_frame_image_for_generation(data, tmp_path):
    src = canonical_dataset(tmp_path / "src", {"a": "A red box."})
    data.import_source(str(src), "boxes")
    from PIL import Image

    png = data.frame_image("datasets/boxes", "a", 4, tmp_path / "frames")
    assert png.name == "a-frame004.png" and Image.open(png).size == (32, 32)
    with pytest.raises(DatasetError, match="ends before frame 100"):
        data.frame_image("datasets/boxes", "a", 99, tmp_path / "frames")


def test_default_import_names():
    assert default_import_name("/data/GR1 clips/") == "GR1-clips"
    assert default_import_name("/tmp/x/robot.zip") == "robot"
    assert default_import_name("nvidia/GR1-100") == "GR1-100"
    assert default_import_name("sample") == "sample-robot"


def test_data_controller_does_not_import_torch_or_gradio():
    code = (
        "import sys, studio.dataset_controller, studio.generation_client, studio.train_form, studio.run_view; "
        "print(sorted(m for m in ('torch', 'diffusers', 'gradio') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_sample_is_copied_once_to_edit_it_from_the_data_tab(tmp_path, monkeypatch):
    """The sample refuses edits and says how to get an editable copy; the Data tab's button makes that copy once."""
    import gradio as gr

    from studio import tab_data
    from studio.workspace import open_studio

    monkeypatch.setattr(gr, "Warning", lambda message, *a, **k: pytest.fail(message))
    studio = open_studio(tmp_path / "ws")
    try:
        with pytest.raises(Refused) as refused:
            studio.datasets.save_caption("sample", "train_0000", "new")
        assert str(refused.value) == (
            "The built-in sample is read-only; import it to edit it (Data tab: Import a copy to edit)."
        )
        message, picked = (tab_data.import_sample_copy(studio)[k] for k in ("message", "dataset"))
        assert message.startswith("Imported 48 clips") and picked["value"] == "datasets/sample-robot"
        studio.datasets.save_caption("datasets/sample-robot", "train_0000", "The left arm waves.")
        message, picked = (
            tab_data.import_sample_copy(studio)[k] for k in ("message", "dataset")
        )  # pressed again: the same copy, edits kept
        assert (
            message
            == "The copy of the sample is `datasets/sample-robot` (edited captions included); it is picked again."
        )
        assert picked["value"] == "datasets/sample-robot"
        root = studio.workspace.root / "datasets"
        assert [p.name for p in root.iterdir() if p.is_dir()] == ["sample-robot"]
        assert (root / "sample-robot" / "metas" / "train_0000.txt").read_text() == "The left arm waves.\n"
        assert studio.datasets.check("datasets/sample-robot").usable == 48
    finally:
        studio.close()
