"""Which revision of a Hub model each command downloads, and what the cards and records say about it.

`huggingface_hub.snapshot_download` is replaced by a recorder that returns a Hub-cache-shaped folder
(`models--nvidia--Cosmos-Predict2.5-2B/snapshots/<sha>/`) holding the tiny pipeline, so every command runs its
real code path, offline, on the tiny weights under the real model's id.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import tiny_config

HUB_MODEL = "nvidia/Cosmos-Predict2.5-2B"
POST_TRAINED = "diffusers/base/post-trained"
SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def fake_snapshot(tmp_path_factory) -> Path:
    from trainer.spec.embedded import tiny_model_dir

    folder = tmp_path_factory.mktemp("hub") / "models--nvidia--Cosmos-Predict2.5-2B" / "snapshots" / SHA
    shutil.copytree(tiny_model_dir(), folder)
    return folder


@pytest.fixture
def downloads(monkeypatch, fake_snapshot) -> list[dict]:
    import huggingface_hub

    calls: list[dict] = []

    def snapshot_download(repo_id, **kwargs):
        calls.append({"repo_id": repo_id, **kwargs})
        return str(fake_snapshot)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    return calls


def trainer_main(*argv: str) -> int:
    from trainer.__main__ import main

    return main(list(argv))


def test_resolve_revision_is_the_one_rule():
    from trainer.spec.config import TrainConfig, resolve_revision

    assert resolve_revision(HUB_MODEL, None) == resolve_revision(HUB_MODEL, "") == POST_TRAINED
    assert resolve_revision(HUB_MODEL, "diffusers/base/pre-trained") == "diffusers/base/pre-trained"
    assert resolve_revision("someone/other-cosmos", "") is None
    assert resolve_revision("tiny", "") is None
    assert TrainConfig(data="x", model=HUB_MODEL).model_revision == POST_TRAINED


def test_snapshot_commit_reads_the_hub_cache_layout(tmp_path):
    from trainer.cosmos import model_identity, snapshot_commit

    assert snapshot_commit(tmp_path / "snapshots" / SHA) == SHA
    assert snapshot_commit(tmp_path / "snapshots" / "not-a-sha") is None
    assert snapshot_commit(tmp_path / SHA) is None
    assert model_identity("someone/other-cosmos", None, tmp_path / "snapshots" / SHA) == {
        "base_model": "someone/other-cosmos",
        "revision": "main",
        "commit": SHA,
    }
    assert model_identity(str(tmp_path), None) == {"base_model": str(tmp_path), "revision": "", "commit": None}


def test_train_downloads_the_post_trained_revision_and_the_card_records_the_commit(tmp_path, clip_dataset, downloads):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps(tiny_config(clip_dataset, tmp_path / "runs", model=HUB_MODEL, max_steps=1)))
    assert trainer_main("train", "--config", str(cfg)) == 0
    assert [(c["repo_id"], c["revision"]) for c in downloads] == [(HUB_MODEL, POST_TRAINED)]
    card = json.loads((tmp_path / "runs" / "run" / "adapter" / "adapter_card.json").read_text())
    assert (card["base_model"], card["revision"], card["commit"]) == (HUB_MODEL, POST_TRAINED, SHA)
    readme = (tmp_path / "runs" / "run" / "adapter" / "README.md").read_text()
    assert f'base_model: "{HUB_MODEL}"' in readme and SHA in readme


def test_generate_downloads_the_post_trained_revision_and_records_it(tmp_path, clip_dataset, downloads):
    out = tmp_path / "gen"
    code = trainer_main(
        "generate",
        "--model",
        HUB_MODEL,
        "--image",
        str(clip_dataset / "videos" / "clip00.mp4"),
        "--prompt",
        "A box.",
        "--height",
        "32",
        "--width",
        "32",
        "--num-frames",
        "9",
        "--steps",
        "1",
        "--no-guardrail",
        "--out",
        str(out),
    )
    assert code == 0
    assert [(c["repo_id"], c["revision"]) for c in downloads] == [(HUB_MODEL, POST_TRAINED)]
    record = json.loads((out / "compare.json").read_text())
    assert (record["model"], record["revision"], record["commit"]) == (HUB_MODEL, POST_TRAINED, SHA)


def test_evaluate_downloads_the_post_trained_revision(tmp_path, clip_dataset, downloads, capsys):
    code = trainer_main(
        "evaluate",
        "--model",
        HUB_MODEL,
        "--data",
        str(clip_dataset),
        "--max-clips",
        "1",
        "--steps",
        "1",
        "--height",
        "32",
        "--width",
        "32",
        "--num-frames",
        "9",
        "--no-guardrail",
        "--json",
    )
    assert code == 0
    assert [(c["repo_id"], c["revision"]) for c in downloads] == [(HUB_MODEL, POST_TRAINED)]
    assert json.loads(capsys.readouterr().out)["settings"]["model"] == HUB_MODEL


def test_worker_downloads_the_post_trained_revision(tmp_path, clip_dataset, downloads):
    import io

    from trainer.worker import Worker

    out = io.StringIO()
    request = {
        "id": 1,
        "model": HUB_MODEL,
        "revision": "",
        "guardrail": False,
        "prompt": "A box.",
        "image": str(clip_dataset / "videos" / "clip00.mp4"),
        "out_dir": str(tmp_path / "g"),
        "steps": 1,
        "height": 32,
        "width": 32,
        "num_frames": 9,
    }
    Worker(out).handle(json.dumps(request))
    answer = json.loads(out.getvalue().splitlines()[-1])
    assert answer["event"] == "done", answer
    assert [(c["repo_id"], c["revision"]) for c in downloads] == [(HUB_MODEL, POST_TRAINED)]
    assert answer["record"]["revision"] == POST_TRAINED and answer["record"]["commit"] == SHA


def test_an_explicit_revision_is_passed_as_given(tmp_path, clip_dataset, downloads):
    out = tmp_path / "gen"
    code = trainer_main(
        "generate",
        "--model",
        HUB_MODEL,
        "--revision",
        "diffusers/base/pre-trained",
        "--image",
        str(clip_dataset / "videos" / "clip00.mp4"),
        "--prompt",
        "A box.",
        "--height",
        "32",
        "--width",
        "32",
        "--num-frames",
        "9",
        "--steps",
        "1",
        "--no-guardrail",
        "--out",
        str(out),
    )
    assert code == 0
    assert [c["revision"] for c in downloads] == ["diffusers/base/pre-trained"]
