"""`python -m trainer export ADAPTER --merged OUT`: the fused transformer equals base + adapter, without peft."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from adapterfactory import forward, make_adapter, transformer_inputs
from conftest import REPO, run_trainer

# Runs in a child process where peft cannot be imported: plain diffusers loads the merged folder.
NO_PEFT = """
import sys
sys.modules["peft"] = None  # any `import peft` now fails
import torch
from trainer import compat
compat.install()
from diffusers import CosmosTransformer3DModel
from diffusers.utils import is_peft_available
assert not is_peft_available()
transformer = CosmosTransformer3DModel.from_pretrained(sys.argv[1])
inputs = torch.load(sys.argv[2])
with torch.no_grad():
    torch.save(transformer(**inputs)[0], sys.argv[3])
"""


@pytest.mark.parametrize("kind", ["lora", "dora"])
def test_merged_transformer_matches_the_adapter_without_peft(tmp_path, kind):
    folder, trained = make_adapter(tmp_path / "adapter", adapter=kind)
    inputs = transformer_inputs(trained.transformer)
    expected = forward(trained.transformer, inputs)
    out = tmp_path / "merged"
    result = run_trainer("export", str(folder), "--merged", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert {"config.json", "diffusion_pytorch_model.safetensors", "merged_from.json"} <= {p.name for p in out.iterdir()}
    record = json.loads((out / "merged_from.json").read_text())
    assert record["layout"] == "transformer" and record["scale"] == 1.0 and record["base"]["base_model"] == "tiny"
    torch.save(inputs, tmp_path / "inputs.pt")
    child = subprocess.run(
        [sys.executable, "-c", NO_PEFT, str(out), str(tmp_path / "inputs.pt"), str(tmp_path / "y.pt")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == 0, child.stderr[-2000:]
    merged = torch.load(tmp_path / "y.pt").float()
    torch.testing.assert_close(merged, expected, rtol=0, atol=1e-4)


def test_merged_pipeline_folder_loads_whole(tmp_path):
    from trainer.cosmos import PIPELINE_CLASS, NoGuardrail

    folder, trained = make_adapter(tmp_path / "adapter")
    inputs = transformer_inputs(trained.transformer)
    expected = forward(trained.transformer, inputs)
    out = tmp_path / "merged"
    result = run_trainer("export", str(folder), "--merged", str(out), "--pipeline")
    assert result.returncode == 0, result.stderr[-2000:]
    pipe = PIPELINE_CLASS.from_pretrained(out, safety_checker=NoGuardrail())
    assert not any("lora" in name for name, _ in pipe.transformer.named_parameters())
    torch.testing.assert_close(forward(pipe.transformer, inputs), expected, rtol=0, atol=1e-4)


def test_export_usage_errors_exit_2_naming_the_folder(tmp_path):
    result = run_trainer("export", str(tmp_path / "none"), "--merged", str(tmp_path / "out"))
    assert result.returncode == 2 and "has no pytorch_lora_weights.safetensors" in result.stderr
    folder, _ = make_adapter(tmp_path / "adapter")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    result = run_trainer("export", str(folder), "--merged", str(tmp_path / "full"))
    assert result.returncode == 2 and "is not empty" in result.stderr
    assert (tmp_path / "full" / "x").read_text() == "keep me"
