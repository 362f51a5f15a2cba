"""Generation in bf16 where the device supports it (fp32 on request), and DoRA's weight norm computed once per
(adapter, strength) at inference with the output peft computes."""

from __future__ import annotations

import pytest
import torch
from conftest import run_trainer

from trainer import adapters, cosmos, precision
from trainer.dora_inference import frozen_dora_norms
from trainer.spec.config import config_from_dict

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize(
    ("flags", "auto"),
    [
        ({"avx2", "avx512f"}, torch.float32),
        ({"avx512f", "avx512_bf16"}, torch.bfloat16),
        ({"amx_bf16", "amx_tile"}, torch.bfloat16),
        ({"asimd", "bf16"}, torch.bfloat16),
        (set(), torch.float32),
    ],
)
def test_auto_is_bf16_exactly_where_the_cpu_computes_it(flags, auto):
    assert precision.resolve("auto", CPU, flags) == auto
    assert precision.resolve("fp32", CPU, flags) == torch.float32  # fp32 only on request, and always honoured
    assert precision.resolve("bf16", CPU, flags) == torch.bfloat16


def test_auto_on_cuda_follows_the_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert precision.resolve("auto", CUDA) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    assert precision.resolve("auto", CUDA) == torch.float32
    with pytest.raises(ValueError, match=r"^precision: must be one of auto, bf16, fp32 \(got 'fp16'\)$"):
        precision.resolve("fp16", CPU)


def test_generate_records_the_precision_it_ran_in_and_refuses_an_unknown_one(tmp_path, clip_dataset):
    common = [
        "generate",
        "--image",
        str(clip_dataset / "videos" / "clip00.mp4"),
        "--prompt",
        "A box.",
        "--steps",
        "1",
        "--height",
        "32",
        "--width",
        "32",
        "--num-frames",
        "9",
        "--no-guardrail",
    ]
    result = run_trainer(*common, "--precision", "fp32", "--out", str(tmp_path / "o"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert '"precision": "fp32"' in (tmp_path / "o" / "compare.json").read_text()
    assert "generate: fp32; peak memory: RSS" in result.stderr
    bad = run_trainer(*common, "--precision", "fp16", "--out", str(tmp_path / "x"))
    assert bad.returncode == 2 and "generate: precision: must be one of auto, bf16, fp32 (got 'fp16')" in bad.stderr


def _dora_transformer(rank=4):
    """The tiny transformer with a DoRA adapter whose B and magnitudes are random (a trained-looking adapter)."""
    pipe = cosmos.load_pipeline("tiny")
    cfg = config_from_dict({"data": "x", "adapter": "dora", "rank": rank, "alpha": float(rank)})
    torch.manual_seed(0)
    adapters.attach(pipe.transformer, cfg)
    with torch.no_grad():
        for name, param in pipe.transformer.named_parameters():
            if "lora_B" in name or "lora_magnitude" in name:
                param.add_(torch.randn_like(param) * 0.1)
    return pipe.transformer.eval().requires_grad_(False)


def _inputs(transformer):
    g = torch.Generator().manual_seed(1)
    hidden = torch.randn(1, 16, 3, 8, 8, generator=g)
    return dict(
        hidden_states=hidden,
        condition_mask=torch.zeros(1, 1, 3, 8, 8),
        timestep=torch.full((1, 1, 3, 1, 1), 0.5),
        encoder_hidden_states=torch.randn(1, 32, transformer.config.crossattn_proj_in_channels, generator=g),
        padding_mask=torch.zeros(1, 1, 64, 64),
        return_dict=False,
    )


def test_frozen_dora_norms_give_peft_output_with_one_norm_per_layer_and_strength(monkeypatch):
    from peft.tuners.lora.dora import DoraLinearLayer

    transformer = _dora_transformer()
    inputs = _inputs(transformer)
    calls = []
    real_norm = DoraLinearLayer.get_weight_norm
    monkeypatch.setattr(
        DoraLinearLayer, "get_weight_norm", lambda self, *a, **k: (calls.append(self), real_norm(self, *a, **k))[1]
    )
    with torch.no_grad():
        expected = transformer(**inputs)[0]
        per_forward = len(calls)
        assert per_forward > 0  # peft: one norm per DoRA layer on every forward
        calls.clear()
        with frozen_dora_norms(transformer) as layers:
            got = [transformer(**inputs)[0] for _ in range(3)]
            assert layers == per_forward and len(calls) == layers  # three forwards, one norm each
            transformer.set_adapters(["default"], [0.5])  # a new strength: a new norm, once
            half = [transformer(**inputs)[0] for _ in range(2)]
            assert len(calls) == 2 * layers
        outside = transformer(**inputs)[0]  # peft's own path again, at strength 0.5
    for out in got:
        torch.testing.assert_close(out, expected, rtol=0, atol=0)
    for out in half:
        torch.testing.assert_close(out, outside, rtol=0, atol=0)
    assert (half[0] - expected).abs().max() > 1e-4  # the strength mattered
    assert all("forward" not in vars(m) for m in transformer.modules())  # peft's forward is back
