"""The studio app over its API: `python app.py` in a child process, driven with gradio_client.

data (the sample) -> a short real training run (accelerate launch, tiny model) -> base vs adapter comparison ->
an app restart that finds the run and the adapter again.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from studio.tab_train_runs import TICK_OUTPUTS

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 90
TRAIN_TIMEOUT_S = 300
GENERATE_TIMEOUT_S = 240
# A run short enough for a test: the tiny model, 3 steps of 64x64x9 at rank 4, no latent cache to build.
SHORT_RUN = {
    "max_steps": 3,
    "rank": 4,
    "alpha": 4,
    "height": 64,
    "width": 64,
    "num_frames": 9,
    "cache": "off",
    "checkpoint_every": 0,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_app(workspace: Path, log: Path, args: tuple[str, ...] = (), env: dict | None = None) -> Iterator[str]:
    """`python app.py ARGS` on a free localhost port; yields its URL and stops it (Ctrl-C, then SIGKILL) afterwards."""
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})}
    with log.open("ab") as out:
        argv = [sys.executable, "app.py", "--port", str(port), "--workspace", str(workspace), *args]
        app = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert app.poll() is None, f"the app exited with {app.returncode}:\n{log.read_text()[-3000:]}"
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"the app did not serve {url} in {START_TIMEOUT_S} s"
            time.sleep(0.3)
        yield url
    finally:
        app.send_signal(signal.SIGINT)  # like Ctrl-C: atexit stops the generation worker
        try:
            app.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(app.pid, signal.SIGKILL)
            app.wait(5)


def wait_for_run(client, name: str, timeout: float = TRAIN_TIMEOUT_S) -> dict:
    """Poll the Train tab's tick endpoint until the run is no longer running; returns the last tick by name."""
    deadline = time.monotonic() + timeout
    while True:
        tick = dict(zip(TICK_OUTPUTS, client.predict(name, api_name="/train_tick"), strict=True))
        numbers = tick["numbers"] or {}
        if numbers.get("state") not in (None, "running"):
            return tick
        assert time.monotonic() < deadline, f"run {name} still {numbers} after {timeout} s:\n{tick['log']}"
        time.sleep(1.0)


def test_import_app_and_building_the_page_leave_torch_out(tmp_path):
    code = (
        "import sys, app\n"
        "from studio.workspace import open_studio\n"
        f"studio = open_studio({str(tmp_path / 'ws')!r})\n"
        "from studio.ui import build_app\n"
        "demo = build_app(studio)\n"
        "assert len(demo.fns) > 10\n"
        "heavy = ('torch', 'diffusers', 'peft', 'trainer.train', 'trainer.generate')\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert os.environ.get("GRADIO_TEMP_DIR") != str(tmp_path / "ws" / ".gradio")  # set in the child only
    assert (tmp_path / "ws" / ".gradio").is_dir() and (tmp_path / "ws" / "generations").is_dir()


def test_app_flags():
    out = subprocess.run([sys.executable, "app.py", "--help"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for flag in (
        "--host",
        "--port",
        "--share",
        "--workspace",
        "--auth",
        "--read-only",
        "--allow-local-folders",
        "--max-upload-mb",
        "--generation-timeout",
    ):
        assert flag in out.stdout


def test_lerobot_folder_through_the_data_tab_api(tmp_path):
    from gradio_client import Client

    from tests.lerobot_fixture import write_lerobot

    source = write_lerobot(tmp_path / "so100", "v3.0")
    with running_app(tmp_path / "ws", tmp_path / "app.log") as url:
        client = Client(url, verbose=False)
        message, dataset = client.predict(
            "LeRobot folder", str(source), [], "", "so100", "wrist", 1, 9, api_name="/use_dataset"
        )
        assert message.startswith(
            "Imported 6 clips from 4 episodes of so100 (LeRobot v3.0, camera "  # no server path
            "observation.images.wrist, 9 frames, stride 9)"
        )
        assert dataset["value"] == "datasets/so100"
        assert ["datasets/so100/held_out"] * 2 in dataset["choices"]
        summary, _, _ = client.predict("datasets/so100/held_out", 9, api_name="/check_data")
        assert summary == "2 clips in datasets/so100/held_out (canonical layout): 2 usable, 0 not usable."


def test_data_then_training_then_comparison_through_the_api(tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError
    from PIL import Image

    from studio.tab_generate import API_OUTPUTS
    from trainer.spec.embedded import resolve_data
    from trainer.video import read_frames

    ws = tmp_path / "ws"
    log = tmp_path / "app.log"
    with running_app(ws, log) as url:
        client = Client(url, verbose=False)

        # Data: the built-in sample, checked clip by clip.
        message, _ = client.predict("built-in sample", "", [], "", "", api_name="/use_dataset")
        assert "built-in sample robot dataset" in message
        summary, report, _ = client.predict("sample", 9, api_name="/check_data")
        assert summary.startswith("48 clips in sample") and "48 usable, 0 not usable" in summary
        assert report["headers"] == ["file", "frames", "fps", "resolution", "caption", "problem"]
        assert len(report["data"]) == 48 and {row[5] for row in report["data"]} == {"ok"}

        # Train: a short real run; a second start while it trains is queued (and cancelled here).
        run, problems, next_name = client.predict(name="api-run", **SHORT_RUN, api_name="/start_training")
        assert run["value"] == "api-run" and next_name == "api-run-2"
        queued, _, _ = client.predict(name="other", **SHORT_RUN, api_name="/start_training")
        assert queued["value"] == "other"
        assert json.loads((ws / "runs" / "other" / "status.json").read_text())["state"] == "queued"
        client.predict("other", api_name="/cancel_run")
        assert json.loads((ws / "runs" / "other" / "status.json").read_text())["state"] == "cancelled"
        tick = wait_for_run(client, "api-run")
        headline, numbers = tick["headline"], tick["numbers"]
        assert numbers["state"] == "finished", f"{tick['error']}\n{tick['log']}"
        assert (numbers["step"], numbers["total"]) == (3, 3) and numbers["last_loss"] > 0
        assert "finished · step 3/3 · final loss" in headline and "adapter saved" in headline
        assert json.loads((ws / "runs" / "api-run" / "config.json").read_text())["max_steps"] == 3

        # Generate: base vs the new adapter, from the first frame of a sample clip, same noise.
        first = tmp_path / "first.png"
        Image.fromarray(read_frames(resolve_data("sample") / "videos" / "train_0000.mp4", 0, 1)[0]).save(first)
        choices = client.predict(api_name="/refresh_adapters")["choices"]
        assert [c[0] for c in choices] == ["api-run", "api-run@step-3"]  # the run, then its checkpoints
        form = {
            "mode": "first frame (image)",
            "image": handle_file(str(first)),
            "video": None,
            "prompt": "The right arm picks up the yellow banana and places it in the bowl.",
            "negative_prompt": "",
            "seed": 1,
            "steps": 2,
            "guidance": 7.0,
            "height": 64,
            "width": 64,
            "num_frames": 9,
            "fps": 8,
            "model": "tiny",
            "revision": "",
            "guardrail": False,
            "adapters": ["api-run"],
            "strengths": {"headers": ["adapter", "strength"], "data": [["api-run", 0.8]]},
        }
        job = client.submit(**form, api_name="/generate")
        out = dict(zip(API_OUTPUTS, job.result(timeout=GENERATE_TIMEOUT_S), strict=True))
        status, table, files, record_text = out["status"], out["summary"], out["files"], out["record_json"]
        assert status.startswith("Done: 2 variants"), status
        statuses = [dict(zip(API_OUTPUTS, update))["status"] for update in job.outputs()]
        assert any("step 2/2" in text for text in statuses)  # per-step progress was streamed
        record = json.loads(Path(next(f for f in files if f.endswith("compare.json"))).read_text())
        # compare.json, shown and handed out, holds workspace-relative paths: no server folder leaves the studio.
        assert str(ws.resolve()) not in record_text and json.loads(record_text) == record
        assert json.loads(record_text)["variants"][1]["name"] == record["variants"][1]["name"] == "api-run"
        assert [v["name"] for v in record["variants"]] == ["base", "api-run"]
        assert record["variants"][1]["scale"] == 0.8 and record["variants"][1]["card"]["steps"] == 3
        assert [row[0] for row in table["data"]] == ["base", "api-run"]
        (out_dir,) = [p for p in (ws / "generations").iterdir() if (p / "compare.json").exists()]
        for name in ("base.mp4", "api-run.mp4", "compare.mp4"):
            assert (out_dir / name).stat().st_size > 0

        # Video-to-world: the first clip of a dataset video conditions (2 latent frames), which needs 9 frames.
        clip = handle_file(str(resolve_data("sample") / "videos" / "train_0001.mp4"))
        by_clip = form | {
            "mode": "first clip (video)",
            "image": None,
            "video": clip,
            "adapters": [],
            "strengths": {"headers": ["adapter", "strength"], "data": []},
        }
        with pytest.raises(AppError, match=r"num_frames: must be 4k\+1 and at least 9 with 2 conditioning latent"):
            client.predict(**by_clip | {"num_frames": 5}, api_name="/generate")
        out = dict(zip(API_OUTPUTS, client.predict(**by_clip, api_name="/generate"), strict=True))
        record = json.loads(out["record_json"])
        assert record["conditional_latent_frames"] == 2 and record["video"].endswith("train_0001.mp4")
        assert record["image"] == "" and [v["name"] for v in record["variants"]] == ["base"]

    # Restart: the runs and adapters are read from disk.
    with running_app(ws, log) as url:
        client = Client(url, verbose=False)
        numbers = wait_for_run(client, "api-run", timeout=30)["numbers"]
        assert (numbers["state"], numbers["step"]) == ("finished", 3)
        table, chosen = client.predict(None, api_name="/list_adapters")
        assert [row[0] for row in table["data"]] == ["api-run"] and chosen["value"] == "api-run"
        zipped = client.predict("api-run", api_name="/zip_adapter")
        zipped = zipped["value"] if isinstance(zipped, dict) else zipped  # an update that also shows the file
        assert Path(zipped).name == "api-run.zip" and (ws / "exports" / "api-run.zip").exists()
        _, _, confirm = client.predict("api-run", "api-ru", api_name="/delete_adapter")
        assert (ws / "runs" / "api-run" / "adapter").exists()  # the name was not typed exactly
        table, _, confirm = client.predict("api-run", "api-run", api_name="/delete_adapter")
        assert table["data"] == [] and not (ws / "runs" / "api-run" / "adapter").exists()
    assert "Traceback" not in log.read_text()
