"""The path policy (studio.paths), the launcher, import-data --json, cleanup and deletes, without Gradio."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import write_clip_dataset

from studio import launcher
from studio.cleanup import prune
from studio.dataset_controller import DatasetController
from studio.folders import ReadOnlyError, Workspace
from studio.jobs import JobError, JobManager
from studio.paths import PathPolicy, PathRefused, check_name, local_folders_default
from trainer.datasets import DatasetError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def ws(tmp_path) -> Workspace:
    ws = Workspace((tmp_path / "ws").resolve())
    write_clip_dataset(ws.datasets / "alpha", clips=1)
    write_clip_dataset(tmp_path / "outside", clips=1)
    (ws.datasets / "linked").symlink_to(tmp_path / "outside", target_is_directory=True)
    return ws


def test_datasets_resolve_inside_the_workspace_or_not_at_all(ws, tmp_path):
    paths = PathPolicy(ws)
    assert paths.dataset("datasets/alpha") == ws.datasets / "alpha"
    assert paths.dataset(str(ws.datasets / "alpha")) == ws.datasets / "alpha"
    for value in (str(tmp_path / "outside"), "../outside", "datasets/../../outside", "datasets/linked", "~"):
        with pytest.raises(PathRefused, match="^That dataset is outside the workspace; pick the sample"):
            paths.dataset(value)
    assert PathPolicy(Workspace(ws.root, allow_local_folders=True)).dataset("../outside") == tmp_path / "outside"
    with pytest.raises(PathRefused, match="^The built-in sample is read-only"):
        paths.dataset("sample", write=True)
    with pytest.raises(
        PathRefused,
        match=r"^Only datasets imported into the workspace \(datasets/<name>\) can be "
        r"changed; import datasets/linked first\.$",
    ):
        PathPolicy(Workspace(ws.root, allow_local_folders=True)).dataset("datasets/linked", write=True)
    for name in ("../x", "a/b", ".hidden", "", "x" * 201):
        with pytest.raises(PathRefused, match="must be one name"):
            check_name(name, "clip")


def test_messages_name_no_server_path(ws, tmp_path):
    paths = PathPolicy(ws)
    assert paths.show(ws.datasets / "alpha" / "videos" / "clip00.mp4") == "datasets/alpha/videos/clip00.mp4"
    assert paths.show(tmp_path / "outside" / "x.mp4") == "x.mp4"
    text = f"{ws.root}/runs/a/train.log and {tmp_path}/elsewhere/file.txt, see https://huggingface.co/d/x"
    assert paths.redact(text) == "runs/a/train.log and file.txt, see https://huggingface.co/d/x"


def test_local_folders_default_only_on_loopback_outside_a_space():
    assert local_folders_default("127.0.0.1", {}) and local_folders_default("localhost", {})
    assert not local_folders_default("0.0.0.0", {})
    assert not local_folders_default("127.0.0.1", {"SPACE_ID": "a/b"})


def test_clips_and_captions_stay_inside_their_dataset(ws, tmp_path):
    data = DatasetController(ws)
    with pytest.raises(DatasetError, match=r"^datasets/alpha has no clip '\.\./\.\./outside/videos/clip00'"):
        data.clip("datasets/alpha", "../../outside/videos/clip00")
    with pytest.raises(PathRefused, match="The clip '../x' must be one name"):
        data.save_caption("datasets/alpha", "../x", "pwned")
    # A clip file linked from elsewhere is not read either.
    (ws.datasets / "alpha" / "videos" / "clip09.mp4").symlink_to(tmp_path / "outside" / "videos" / "clip00.mp4")
    (ws.datasets / "alpha" / "metas" / "clip09.txt").write_text("linked")
    with pytest.raises(
        PathRefused,
        match=r"^The clip datasets/alpha/videos/clip09\.mp4 points outside its dataset; "
        r"it is not read\.$",
    ):
        data.clip("datasets/alpha", "clip09")
    with pytest.raises(PathRefused, match=r"^Importing a folder of the server is turned off here"):
        data.import_source(str(tmp_path / "outside"), "x")
    with pytest.raises(PathRefused, match=r"^Importing a folder of the server is turned off here"):
        data.import_source("--help", "x")
    assert data.choices() == ["sample", "sample:held_out", "datasets/alpha"]  # the link is not offered


def test_read_only_refuses_in_the_controllers(ws):
    read_only = Workspace(ws.root, read_only=True)
    data = DatasetController(read_only)
    with pytest.raises(ReadOnlyError, match=r"^This studio is read-only: editing captions is turned off"):
        data.save_caption("datasets/alpha", "clip00", "x")
    with pytest.raises(ReadOnlyError, match="importing data"):
        data.import_source("sample", "x")
    with pytest.raises(ReadOnlyError, match="deleting a dataset"):
        data.delete("datasets/alpha", "alpha")
    assert data.check("datasets/alpha").usable == 1  # reading is fine


def test_dataset_delete_needs_its_name_and_no_run_training_on_it(ws, tmp_path):
    script = tmp_path / "sleeper.py"
    script.write_text("import time, sys; time.sleep(30)\n")
    jobs = JobManager(ws, launcher=lambda config: [sys.executable, str(script), str(config)])
    data = DatasetController(ws, jobs)
    from trainer.spec.config import config_from_dict

    cfg = config_from_dict({"data": "datasets/alpha", "name": "r", "height": 64, "width": 64, "num_frames": 9})
    job = jobs.start(cfg)
    try:
        with pytest.raises(DatasetError, match=r"^Type the dataset name 'alpha' exactly"):
            data.delete("datasets/alpha", "alph")
        with pytest.raises(
            DatasetError, match=r"^Run 'r' is training on datasets/alpha; stop it before deleting it\.$"
        ):
            data.delete("datasets/alpha", "alpha")
        with pytest.raises(DatasetError, match=r"^Run 'r' is training on datasets/alpha; stop it before changing"):
            data.delete_clip("datasets/alpha", "clip00")
        with pytest.raises(JobError, match=r"^Run 'r' is training; stop it before deleting it\.$"):
            jobs.delete("r", "r")
    finally:
        jobs.kill("r")
        job.wait(10)
    write_clip_dataset(ws.datasets / "alpha", clips=2)
    with pytest.raises(PathRefused, match="must be one name"):
        data.delete_clip("datasets/alpha", "../../outside/videos/clip00")
    data.delete_clip("datasets/alpha", "clip00")
    assert data.clips("datasets/alpha") == ["clip01"] and (tmp_path / "outside" / "videos" / "clip00.mp4").exists()
    data.delete("datasets/alpha", "alpha")
    assert not (ws.datasets / "alpha").exists() and (tmp_path / "outside" / "videos").is_dir()
    jobs.delete("r", "r")
    assert not (ws.runs / "r").exists()


def test_launcher_puts_values_after_a_double_dash(tmp_path):
    argv = launcher.trainer_command("import-data", ["--json", "--to", str(tmp_path / "d")], ["--help"])
    assert argv[-2:] == ["--", "--help"]
    done = launcher.run(argv, REPO, tmp_path / "import.log", timeout=120)
    assert done.returncode == 2
    assert json.loads(done.stdout) == {
        "exit_code": 2,
        "error": "--help is not a folder, a .zip file or a Hub dataset id (owner/name).",
    }
    assert "import-data --json --to" in (tmp_path / "import.log").read_text()  # the dated command line


def test_import_data_json_result(tmp_path):
    src = write_clip_dataset(tmp_path / "src", clips=2)
    (src / "metas" / "clip01.txt").unlink()
    argv = launcher.trainer_command("import-data", ["--json", "--to", str(tmp_path / "d")], [str(src)])
    done = subprocess.run(argv, cwd=REPO, env=launcher.child_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert json.loads(done.stdout) == {
        "exit_code": 1,
        "source": str(src),
        "destination": str(tmp_path / "d"),
        "layout": "canonical",
        "clips": 2,
        "copied": 2,
        "missing_files": [],
        "uncaptioned": ["videos/clip01.mp4: missing caption (no metas/clip01.txt)"],
    }


def test_prune_removes_only_old_generations_uploads_and_exports(ws):
    old, new = ws.generations / "20200101-000000", ws.generations / "20990101-000000"
    for folder in (old, new, ws.gradio_temp / "abc", ws.exports):
        folder.mkdir(parents=True, exist_ok=True)
    (old / "compare.mp4").write_bytes(b"x")
    (new / "compare.mp4").write_bytes(b"x")
    (ws.gradio_temp / "abc" / "upload.zip").write_bytes(b"x")
    (ws.exports / "a.zip").write_bytes(b"x")
    stale = time.time() - 30 * 86400
    for path in (old, old / "compare.mp4", ws.gradio_temp / "abc", ws.gradio_temp / "abc" / "upload.zip"):
        os.utime(path, (stale, stale))
    removed = prune(ws, older_than_days=14)
    assert sorted(p.name for p in removed) == ["20200101-000000", "abc"]
    assert new.is_dir() and (ws.exports / "a.zip").exists() and (ws.datasets / "alpha").is_dir()
    assert prune(ws, older_than_days=0) == []


def test_a_full_workspace_takes_no_new_data_but_still_deletes(tmp_path):
    from studio.folders import QuotaError, workspace_bytes
    from trainer.spec.config import config_from_dict

    root = (tmp_path / "quota").resolve()
    (root / "datasets" / "big" / "videos").mkdir(parents=True)
    (root / "datasets" / "big" / "metas").mkdir()
    (root / "datasets" / "big" / "videos" / "a.mp4").write_bytes(b"x" * 3 * 2**20)  # 3 MB of "video"
    (root / "datasets" / "big" / "metas" / "a.txt").write_text("A clip.")
    ws = Workspace(root, max_bytes=2 * 2**20)
    assert workspace_bytes(root) == 3 * 2**20 + len("A clip.")
    message = (
        "The workspace is full (0.0 of 0.00195312 GB): {} is refused; delete old runs, datasets or generations first."
    )
    jobs = JobManager(ws, launcher=lambda config: [sys.executable, "-c", "pass"])
    with pytest.raises(QuotaError) as caught:
        jobs.start(
            config_from_dict(
                {"data": "datasets/big", "name": "r", "max_steps": 1, "height": 64, "width": 64, "num_frames": 9}
            )
        )
    assert str(caught.value) == message.format("training") and not (root / "runs" / "r").exists()
    data = DatasetController(ws, jobs)
    with pytest.raises(QuotaError, match="importing data is refused"):
        data.import_uploads([str(root / "datasets" / "big" / "videos" / "a.mp4")], "more")
    data.delete("datasets/big", "big")  # deleting is what frees room: never refused
    assert not (root / "datasets" / "big").exists()
    ws.require_room("training")  # room again


def test_cpu_children_leave_the_studio_a_core_unless_told_otherwise(monkeypatch):
    """On a machine without a GPU a child computes with one torch thread fewer than the cores (the page redraws
    every second); OMP_NUM_THREADS set by the user wins, and a GPU machine keeps torch's own choice."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(launcher, "cuda_visible", lambda: False)
    assert [launcher.cpu_threads(n) for n in (1, 2, 8)] == [1, 1, 7]
    assert launcher.child_env()["OMP_NUM_THREADS"] == str(launcher.cpu_threads())
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert launcher.child_env()["OMP_NUM_THREADS"] == "3"
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(launcher, "cuda_visible", lambda: True)
    assert "OMP_NUM_THREADS" not in launcher.child_env()
