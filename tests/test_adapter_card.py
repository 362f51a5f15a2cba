"""The saved adapter: one key naming that diffusers reads back exactly, and a README whose code runs as written."""

from __future__ import annotations

import json
import re

import pytest
import torch
from adapterfactory import forward, make_adapter, transformer_inputs

KEY = re.compile(r"^transformer\.[A-Za-z0-9_.]+\.(lora_A\.weight|lora_B\.weight|lora_magnitude_vector)$")


@pytest.mark.parametrize("kind", ["lora", "dora"])
def test_keys_follow_one_naming_and_reload_to_the_same_output(tmp_path, kind):
    from safetensors.torch import load_file

    from trainer.cosmos import load_pipeline
    from trainer.spec.run_folder import WEIGHTS_FILE

    folder, trained = make_adapter(tmp_path / "adapter", adapter=kind)
    keys = list(load_file(str(folder / WEIGHTS_FILE)))
    assert keys and [k for k in keys if not KEY.match(k)] == []
    assert any(".ff.net.0.proj.lora_A" in k for k in keys) and any(".attn1.to_q.lora_A" in k for k in keys)
    assert any(k.endswith("lora_magnitude_vector") for k in keys) == (kind == "dora")
    inputs = transformer_inputs(trained.transformer)
    expected = forward(trained.transformer, inputs)
    fresh = load_pipeline("tiny")
    base = forward(fresh.transformer, inputs)
    fresh.load_lora_weights(str(folder), adapter_name="a")
    reloaded = forward(fresh.transformer, inputs)
    assert not torch.allclose(base, expected, atol=1e-3)  # the adapter changes the output ...
    torch.testing.assert_close(reloaded, expected, rtol=0, atol=1e-6)  # ... and reloads to the same one


def test_the_tiny_readme_code_runs_as_written(tmp_path, monkeypatch):
    from trainer import compat
    from trainer.model_card import TINY_BASE_PATH, code_blocks
    from trainer.spec.embedded import tiny_model_dir
    from trainer.video import probe_video

    folder, _ = make_adapter(tmp_path / "runs" / "pick" / "adapter")
    readme = (folder / "README.md").read_text()
    blocks = code_blocks(readme)
    assert len(blocks) == 1 and f'load_lora_weights("{folder.resolve()}"' in blocks[0]
    # Run where a clone of the project would be: its tiny base at the path the README names.
    cwd = tmp_path / "clone"
    (cwd / TINY_BASE_PATH).parent.mkdir(parents=True)
    (cwd / TINY_BASE_PATH).symlink_to(tiny_model_dir())
    monkeypatch.chdir(cwd)
    compat.install()  # only stands in for torchvision where it is missing (this machine); no-op elsewhere
    exec(compile(blocks[0], "README.md", "exec"), {"__name__": "__readme__"})
    video = probe_video(cwd / "adapter.mp4")
    assert (video.frames, video.width, video.height) == (17, 64, 64)


def test_the_hub_readme_names_the_revision_and_both_guardrail_choices():
    from trainer.adapters import make_card
    from trainer.model_card import code_blocks, render
    from trainer.spec.config import TrainConfig

    cfg = TrainConfig(data="datasets/gr1", model="nvidia/Cosmos-Predict2.5-2B", adapter="dora")
    base = {"base_model": "nvidia/Cosmos-Predict2.5-2B", "revision": "diffusers/base/post-trained", "commit": "a" * 40}
    card = json.loads(json.dumps(make_card(cfg, base, {"clips": 92, "digest": "d"}, 100, 0.1), default=str))
    blocks = code_blocks(render(card, "owner/robot-dora"))
    assert len(blocks) == 2
    for block in blocks:
        compile(block, "README.md", "exec")  # both are whole, valid programs
    assert 'from_pretrained(\n    "nvidia/Cosmos-Predict2.5-2B", revision="diffusers/base/post-trained"' in blocks[0]
    assert 'pipe.load_lora_weights("owner/robot-dora"' in blocks[0] and "safety_checker" not in blocks[0]
    assert "safety_checker=NoGuardrail()" in blocks[1] and "def check_text_safety" in blocks[1]
    assert "height=432, width=768, num_frames=93" in blocks[0]
