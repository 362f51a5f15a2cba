"""The CLI contract: build-tiny, generate's files, and one-sentence errors for models that cannot load."""

from __future__ import annotations

import json

import pytest
from conftest import run_trainer


def test_build_tiny_copies_the_embedded_base(tmp_path):
    from trainer.spec.embedded import tiny_model_dir

    result = run_trainer("build-tiny", str(tmp_path / "copy"))
    assert result.returncode == 0, result.stderr[-2000:]
    shipped = sorted(p.relative_to(tiny_model_dir()) for p in tiny_model_dir().rglob("*") if p.is_file())
    copied = sorted(p.relative_to(tmp_path / "copy") for p in (tmp_path / "copy").rglob("*") if p.is_file())
    assert copied == shipped
    assert all((tmp_path / "copy" / p).read_bytes() == (tiny_model_dir() / p).read_bytes() for p in shipped)


def test_build_tiny_random_is_deterministic_and_in_diffusers_layout(tmp_path):
    from safetensors.torch import load_file

    for name in ("a", "b"):
        result = run_trainer("build-tiny", "--random", str(tmp_path / name))
        assert result.returncode == 0, result.stderr[-2000:]
    index = json.loads((tmp_path / "a" / "model_index.json").read_text())
    assert index["_class_name"] == "Cosmos2_5_PredictBasePipeline"
    assert {"transformer", "vae", "text_encoder", "tokenizer", "scheduler"} <= set(index)
    wa = load_file(str(tmp_path / "a" / "transformer" / "diffusion_pytorch_model.safetensors"))
    wb = load_file(str(tmp_path / "b" / "transformer" / "diffusion_pytorch_model.safetensors"))
    assert wa.keys() == wb.keys() and all((wa[k] == wb[k]).all() for k in wa)
    refused = run_trainer("build-tiny", "--random", str(tmp_path / "a"))
    assert refused.returncode == 2 and "not empty" in refused.stderr


def test_generate_writes_every_variant_side_by_side_and_the_record(tmp_path, clip_dataset):
    from trainer.video import probe_video

    run = tmp_path / "runs"
    cfg = tmp_path / "c.json"
    cfg.write_text(
        json.dumps(
            {
                "data": str(clip_dataset),
                "output_dir": str(run),
                "name": "a1",
                "rank": 4,
                "alpha": 4.0,
                "max_steps": 1,
                "height": 64,
                "width": 64,
                "num_frames": 9,
                "mixed_precision": "no",
                "gradient_checkpointing": False,
                "warmup_steps": 0,
                "cache": "off",
            }
        )
    )
    assert run_trainer("train", "--config", str(cfg)).returncode == 0
    out = tmp_path / "gen"
    result = run_trainer(
        "generate",
        "--image",
        str(clip_dataset / "videos" / "clip00.mp4"),
        "--prompt",
        "A box.",
        "--adapter",
        f"{run / 'a1' / 'adapter'}:0.5",
        "--height",
        "64",
        "--width",
        "64",
        "--num-frames",
        "9",
        "--steps",
        "2",
        "--seed",
        "3",
        "--no-guardrail",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert {p.name for p in out.iterdir()} == {"base.mp4", "a1.mp4", "compare.mp4", "compare.json"}
    record = json.loads((out / "compare.json").read_text())
    assert record["seed"] == 3 and record["prompt"] == "A box." and record["steps"] == 2
    assert [v["name"] for v in record["variants"]] == ["base", "a1"]
    adapter = record["variants"][1]
    assert adapter["scale"] == 0.5 and len(adapter["adapter_id"]) == 16 and adapter["card"]["rank"] == 4
    single, both = probe_video(out / "base.mp4"), probe_video(out / "compare.mp4")
    assert single.frames == both.frames == 9
    assert both.width == 2 * single.width and both.height > single.height  # two columns under name labels


def test_generate_usage_errors_exit_2_naming_the_problem(tmp_path):
    result = run_trainer(
        "generate",
        "--image",
        str(tmp_path / "none.png"),
        "--prompt",
        "x",
        "--height",
        "60",
        "--out",
        str(tmp_path / "o"),
    )
    assert result.returncode == 2
    assert "image:" in result.stderr and "height: must be a positive multiple of 16" in result.stderr


@pytest.mark.parametrize(
    "model,expected",
    [
        ("nvidia/Cosmos-Predict2.5-2B", "not in the local Hugging Face cache and the Hub cannot be reached"),
        ("/no/such/folder/with/a/pipeline", "neither a local folder nor a Hub model id"),
    ],
)
def test_unloadable_models_end_in_one_sentence(model, expected, monkeypatch):
    from trainer.cosmos import ModelError, resolve_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError) as err:
        resolve_model(model, "diffusers/base/post-trained")
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_missing_guardrail_is_a_clear_choice_for_nvidia_models():
    from trainer.cosmos import ModelError, NoGuardrail, make_guardrail

    assert isinstance(make_guardrail(False, "nvidia/Cosmos-Predict2.5-2B"), NoGuardrail)
    try:
        import cosmos_guardrail  # noqa: F401
    except ImportError:
        with pytest.raises(ModelError, match="guardrail to false"):
            make_guardrail(True, "nvidia/Cosmos-Predict2.5-2B")
    else:
        pytest.skip("cosmos_guardrail is installed here: the missing-package message cannot be shown")


@pytest.mark.parametrize("scale", ["nan", "inf", "11"])
def test_an_adapter_strength_that_is_not_finite_or_too_large_is_a_usage_error(tmp_path, scale):
    from adapterfactory import make_adapter

    make_adapter(tmp_path / "a")
    image = tmp_path / "f.png"
    from PIL import Image

    Image.new("RGB", (64, 64)).save(image)
    result = run_trainer(
        "generate",
        "--image",
        str(image),
        "--prompt",
        "x",
        "--adapter",
        f"{tmp_path / 'a'}:{scale}",
        "--out",
        str(tmp_path / "out"),
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "the strength of a must be a number between -10 and 10" in result.stderr
    assert not (tmp_path / "out").exists()


def test_the_studio_refuses_a_strength_that_is_not_finite():
    import gradio as gr
    import pandas as pd

    from studio.tab_generate_variants import STRENGTH_COLUMNS, strengths

    assert strengths(pd.DataFrame([["a", 0.5]], columns=STRENGTH_COLUMNS)) == {"a": 0.5}
    with pytest.raises(gr.Error, match="The strength of 'a' must be a number between -10 and 10"):
        strengths(pd.DataFrame([["a", float("inf")]], columns=STRENGTH_COLUMNS))
