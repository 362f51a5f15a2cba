"""Publishing to the Hub, tested at the network boundary: the exact requests `HfApi` is asked to make.

No torch here: the adapter folder holds stand-in weight bytes (publishing never reads them) and a real card.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from trainer.spec.config import TrainConfig

TOKEN = "hf_NotARealTokenButSecret0123456789"
REPO = "someone/robot-dora"


def _card(base_model: str) -> dict:
    from trainer import __version__

    cfg = TrainConfig(data="datasets/gr1", model=base_model, adapter="dora", rank=32, alpha=32.0)
    return {
        "base_model": base_model,
        "revision": "diffusers/base/post-trained",
        "commit": "c" * 40,
        "adapter": "dora",
        "rank": 32,
        "alpha": 32.0,
        "target_modules": list(cfg.target_modules),
        "dataset": {"path": "datasets/gr1", "clips": 92, "digest": "abc"},
        "steps": 1000,
        "final_loss": 0.1234,
        "config": cfg.to_dict(),
        "created": "2026-01-01T00:00:00Z",
        "project_version": __version__,
    }


EVALUATION = {
    "variants": {
        "base": {"val_loss": 0.3245, "psnr": 18.51, "ssim": 0.538, "hand_accuracy": None},
        "robot-dora": {"val_loss": 0.1160, "psnr": 19.16, "ssim": 0.561, "hand_accuracy": 0.5},
    },
    "settings": {"clips": 12, "data": "datasets/gr1-held-out", "seed": 0},
}


def make_folder(folder: Path, base_model: str = "nvidia/Cosmos-Predict2.5-2B", extras: bool = True) -> Path:
    folder.mkdir(parents=True)
    (folder / "pytorch_lora_weights.safetensors").write_bytes(b"weights")
    (folder / "adapter_card.json").write_text(json.dumps(_card(base_model)))
    (folder / "README.md").write_text("local readme, not uploaded as is")
    if extras:
        (folder / "evaluation.json").write_text(json.dumps(EVALUATION))
        (folder / "compare.mp4").write_bytes(b"video")
    return folder


class FakeHub:
    """Records create_repo / upload_folder calls; upload_folder also records the files as uploaded."""

    def __init__(self, fail_status: int | None = None):
        self.calls: list[tuple[str, dict]] = []
        self.uploaded: dict[str, bytes] = {}
        self.fail_status = fail_status

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
        if self.fail_status:
            import httpx2  # the Hub client's HTTP library
            from huggingface_hub.errors import HfHubHTTPError

            request = httpx2.Request("POST", "https://huggingface.co/api/repos/create")
            raise HfHubHTTPError("refused", response=httpx2.Response(self.fail_status, request=request))
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs))
        self.uploaded = {p.name: p.read_bytes() for p in Path(kwargs["folder_path"]).iterdir()}


@pytest.fixture
def hub(monkeypatch, tmp_path) -> FakeHub:
    import huggingface_hub

    fake = FakeHub()
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", lambda self, *a, **k: fake.create_repo(*a, **k))
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", lambda self, **k: fake.upload_folder(**k))
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    return fake


def trainer_main(*argv: str) -> int:
    from trainer.__main__ import main

    return main(list(argv))


def front_matter(readme: str) -> dict:
    assert readme.startswith("---\n")
    return yaml.safe_load(readme.split("---\n")[1])


def test_publish_asks_the_hub_for_exactly_this(tmp_path, hub, capsys):
    folder = make_folder(tmp_path / "adapter")
    assert trainer_main("publish", str(folder), "--repo", REPO, "--private") == 0
    out, err = capsys.readouterr()
    assert out.strip() == f"https://huggingface.co/{REPO}"
    assert [name for name, _ in hub.calls] == ["create_repo", "upload_folder"]
    assert hub.calls[0][1] == {"repo_id": REPO, "repo_type": "model", "private": True, "exist_ok": True}
    upload = hub.calls[1][1]
    assert (upload["repo_id"], upload["repo_type"]) == (REPO, "model") and "token" not in upload
    assert set(hub.uploaded) == {
        "pytorch_lora_weights.safetensors",
        "adapter_card.json",
        "README.md",
        "evaluation.json",
        "compare.mp4",
    }
    assert hub.uploaded["pytorch_lora_weights.safetensors"] == b"weights"
    readme = hub.uploaded["README.md"].decode()
    assert front_matter(readme) == {
        "base_model": "nvidia/Cosmos-Predict2.5-2B",
        "base_model_relation": "adapter",
        "license": "other",
        "license_name": "nvidia-open-model-license",
        "license_link": "https://www.nvidia.com/en-us/agreement/data-center/nvidia-open-model-license/",
        "library_name": "diffusers",
        "pipeline_tag": "image-to-video",
        "tags": ["lora", "dora", "cosmos", "cosmos-predict2.5", "robotics", "image-to-video", "cosmos-lora-studio"],
    }
    assert f'pipe.load_lora_weights("{REPO}"' in readme  # the snippet loads the published repository
    assert "| robot-dora | 0.1160 | 19.16 | 0.561 | 50% |" in readme  # the evaluation numbers
    assert f"https://huggingface.co/{REPO}/resolve/main/compare.mp4" in readme  # the comparison video
    assert "learning_rate 4.32e-05" in readme and "c" * 40 in readme  # settings and the base commit
    everything = out + err + b"".join(hub.uploaded.values()).decode(errors="replace")
    assert TOKEN not in everything


def test_public_by_default_and_without_optional_files(tmp_path, hub):
    folder = make_folder(tmp_path / "adapter", extras=False)
    assert trainer_main("publish", str(folder), "--repo", REPO) == 0
    assert hub.calls[0][1]["private"] is False
    assert set(hub.uploaded) == {"pytorch_lora_weights.safetensors", "adapter_card.json", "README.md"}
    readme = hub.uploaded["README.md"].decode()
    assert "## Evaluation" not in readme and "<video" not in readme


def test_a_local_base_model_is_not_claimed_as_a_hub_base_model(tmp_path, hub):
    folder = make_folder(tmp_path / "adapter", base_model="tiny")
    assert trainer_main("publish", str(folder), "--repo", REPO) == 0
    meta = front_matter(hub.uploaded["README.md"].decode())
    assert "base_model" not in meta and "license" not in meta and meta["library_name"] == "diffusers"


@pytest.mark.parametrize(
    "args,expected",
    [
        (["--repo", "not a repo"], "is not a Hub repository id"),
        (["--repo", "a/b--c"], "is not a Hub repository id"),
        (["--repo", REPO, "--video", "/no/such.mp4"], "video: /no/such.mp4 does not exist"),
    ],
)
def test_usage_errors_exit_2_before_any_request(tmp_path, hub, capsys, args, expected):
    folder = make_folder(tmp_path / "adapter")
    assert trainer_main("publish", str(folder), *args) == 2
    assert expected in capsys.readouterr().err and hub.calls == []


def test_not_an_adapter_folder_exits_2(tmp_path, hub, capsys):
    assert trainer_main("publish", str(tmp_path), "--repo", REPO) == 2
    assert "has no pytorch_lora_weights.safetensors" in capsys.readouterr().err and hub.calls == []


def test_no_token_says_how_to_log_in(tmp_path, hub, monkeypatch, capsys):
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # an empty login cache
    monkeypatch.setenv("HF_TOKEN_PATH", str(tmp_path / "hf-home" / "token"))
    folder = make_folder(tmp_path / "adapter")
    assert trainer_main("publish", str(folder), "--repo", REPO) == 2
    assert "set HF_TOKEN to a write token, or run `hf auth login`" in capsys.readouterr().err and hub.calls == []


def test_a_refused_write_is_one_sentence_without_the_token(tmp_path, hub, capsys):
    hub.fail_status = 403
    folder = make_folder(tmp_path / "adapter")
    assert trainer_main("publish", str(folder), "--repo", REPO) == 1
    err = capsys.readouterr().err
    assert f"the Hub refused to write to {REPO} (HTTP 403)" in err and TOKEN not in err and "Traceback" not in err


def test_dry_run_writes_the_files_and_uploads_nothing(tmp_path, hub):
    folder = make_folder(tmp_path / "adapter")
    assert trainer_main("publish", str(folder), "--repo", REPO, "--dry-run", str(tmp_path / "staged")) == 0
    assert hub.calls == []
    assert {p.name for p in (tmp_path / "staged").iterdir()} == {
        "pytorch_lora_weights.safetensors",
        "adapter_card.json",
        "README.md",
        "evaluation.json",
        "compare.mp4",
    }


def test_the_studio_publishes_a_workspace_adapter(tmp_path, hub):
    from studio.adapter_registry import AdapterError, AdapterRegistry
    from studio.publish_controller import publish_adapter

    make_folder(tmp_path / "ws" / "runs" / "robot" / "adapter")
    registry = AdapterRegistry(tmp_path / "ws")
    assert publish_adapter(registry, "robot", REPO, True) == f"https://huggingface.co/{REPO}"
    assert hub.calls[0][1]["private"] is True and "README.md" in hub.uploaded
    with pytest.raises(AdapterError, match="owner/name"):
        publish_adapter(registry, "robot", "  ", True)
    with pytest.raises(AdapterError, match="No adapter named 'nope'"):
        publish_adapter(registry, "nope", REPO, True)


def test_the_publish_button_answers_with_the_link_or_the_reason(tmp_path, hub):
    from types import SimpleNamespace

    from studio import tab_adapters
    from studio.adapter_registry import AdapterRegistry

    make_folder(tmp_path / "ws" / "runs" / "robot" / "adapter")
    studio = SimpleNamespace(adapters=AdapterRegistry(tmp_path / "ws"))
    url = f"https://huggingface.co/{REPO}"
    assert tab_adapters.publish(studio, "robot", REPO, True) == f"Published: [{url}]({url})"
    with pytest.warns(UserWarning, match="is not a Hub repository id"):  # gr.Warning: the toast the user sees
        answer = tab_adapters.publish(studio, "robot", "bad id", False)
    assert answer.startswith("repo: 'bad id' is not a Hub repository id")
    assert [name for name, _ in hub.calls] == ["create_repo", "upload_folder"]  # the bad id made no request
