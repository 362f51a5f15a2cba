"""Step-speed settings compute what the plain path computes: checkpointing policies, compile, attention, AdamW."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import tiny_config
from torch.utils._python_dispatch import TorchDispatchMode

from trainer import adapters, cosmos, speed
from trainer.data_plan import step_generator
from trainer.spec.config import config_from_dict
from trainer.spec.embedded import tiny_model_dir

CPU = torch.device("cpu")


def _cfg(**overrides):
    return config_from_dict(tiny_config("unused", Path("unused"), **overrides))


TINY_SPATIAL_SCALE = json.loads((tiny_model_dir() / "vae" / "config.json").read_text())["scale_factor_spatial"]


def _model(cfg, device=CPU):
    pipe = cosmos.load_pipeline("tiny")
    torch.manual_seed(0)
    adapters.attach(pipe.transformer, cfg)
    speed.apply(pipe.transformer, cfg, device)
    return pipe.transformer.to(device)


def _batch(transformer):
    """A latent batch and prompt embeddings shaped for whatever the tiny model's sizes are."""
    g = torch.Generator().manual_seed(0)
    text_width = transformer.config.crossattn_proj_in_channels
    return torch.randn(1, 16, 3, 8, 8, generator=g), torch.randn(1, 512, text_width, generator=g)


def _losses_and_grads(transformer, steps=2, device=CPU, autocast=False):
    clean, embeds = (t.to(device) for t in _batch(transformer))
    losses = []
    for step in range(1, steps + 1):
        draw = cosmos.draw_flow_batch(clean.shape, {1: 0.5, 2: 0.5}, 0.2, step_generator(0, step, 0, 0))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            loss = cosmos.flow_matching_loss(transformer, clean, embeds, draw, 1e-4, spatial_scale=TINY_SPATIAL_SCALE)
        loss.backward()
        losses.append(loss.item())
    return losses, [p.grad.clone() for p in adapters.trainable_parameters(transformer)]


@pytest.fixture(autouse=True)
def _native_attention_afterwards():
    """The dispatcher's backend is process-wide: leave it as the other tests expect it."""
    yield
    from diffusers.models.attention_dispatch import AttentionBackendName, _AttentionBackendRegistry

    _AttentionBackendRegistry.set_active_backend(AttentionBackendName.NATIVE)


@pytest.fixture(scope="module")
def plain():
    return _losses_and_grads(_model(_cfg()))


def _assert_same(result, plain, rel=1e-5, atol=1e-6):
    assert result[0] == pytest.approx(plain[0], rel=rel)
    for got, want in zip(result[1], plain[1], strict=True):
        torch.testing.assert_close(got, want, rtol=rel, atol=atol)


@pytest.mark.parametrize("policy", ["every_block", "selective"])
def test_checkpointing_policies_give_the_plain_loss_and_gradients(plain, policy):
    _assert_same(_losses_and_grads(_model(_cfg(gradient_checkpointing=True, checkpointing_policy=policy))), plain)


class _CountAttention(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.calls += func.overloadpacket in speed._SDPA_OPS
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("policy,recomputed_per_block", [("off", 0), ("every_block", 2), ("selective", 1)])
def test_selective_checkpointing_recomputes_cross_attention_only(policy, recomputed_per_block):
    """Attention kernels run again in the backward pass: both per block when every block is recomputed, only the
    cross-attention one when the self-attention output is kept."""
    transformer = _model(_cfg(gradient_checkpointing=policy != "off", checkpointing_policy=policy))
    clean, embeds = _batch(transformer)
    draw = cosmos.draw_flow_batch(clean.shape, {1: 1.0}, 0.0, step_generator(0, 1, 0, 0))
    loss = cosmos.flow_matching_loss(transformer, clean, embeds, draw, 1e-4, spatial_scale=TINY_SPATIAL_SCALE)
    with _CountAttention() as counter:
        loss.backward()
    assert counter.calls == recomputed_per_block * len(transformer.transformer_blocks)


def test_compiled_blocks_give_the_plain_loss_and_gradients(plain, monkeypatch):
    """torch.compile of every block, with selective checkpointing inside the compiled region. The CPU test uses
    the aot_eager backend: the same graph capture and autograd as inductor, without inductor's C++ code
    generation, which takes over a minute on 2 shared CPU cores; the GPU benchmark runs inductor."""
    monkeypatch.setattr(speed, "COMPILE_OPTIONS", {"backend": "aot_eager"})
    cfg = _cfg(compile=True, gradient_checkpointing=True, checkpointing_policy="selective")
    _assert_same(_losses_and_grads(_model(cfg)), plain)


def test_attention_backend_choices_on_this_machine():
    assert speed.attention_backend("auto", CPU, "bf16") == "native"
    assert speed.attention_backend("native", CPU, "no") == "native"
    for choice in ("flash", "cudnn"):
        with pytest.raises(speed.SpeedError, match=f"attention_backend: '{choice}' needs a CUDA GPU"):
            speed.attention_backend(choice, CPU, "bf16")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="cuDNN and flash attention kernels need a CUDA GPU")
@pytest.mark.parametrize("choice", ["auto", "cudnn", "flash"])
def test_gpu_attention_backends_give_the_native_loss(choice):
    cuda = torch.device("cuda")
    native = _losses_and_grads(_model(_cfg(mixed_precision="bf16"), cuda), device=cuda, autocast=True)
    fast = _losses_and_grads(
        _model(_cfg(mixed_precision="bf16", attention_backend=choice), cuda), device=cuda, autocast=True
    )
    assert fast[0] == pytest.approx(native[0], rel=2e-2)


def test_fused_adamw_takes_the_plain_steps(monkeypatch):
    """The fused kernel is used on CUDA only; torch also has it on CPU, which lets this test compare the two."""
    monkeypatch.setattr(speed, "FUSED_ADAMW_DEVICES", ("cuda", "cpu"))
    cfg = _cfg(learning_rate=1e-2)
    results = []
    for fused in (False, True):
        transformer = _model(cfg)
        params = adapters.trainable_parameters(transformer)
        optimizer = speed.make_optimizer(params, config_from_dict({**cfg.to_dict(), "fused_adamw": fused}), CPU)
        assert bool(optimizer.defaults["fused"]) is fused
        losses = []
        for step in range(1, 4):
            clean, embeds = _batch(transformer)
            draw = cosmos.draw_flow_batch(clean.shape, {1: 0.5, 2: 0.5}, 0.2, step_generator(0, step, 0, 0))
            loss = cosmos.flow_matching_loss(transformer, clean, embeds, draw, 1e-4, spatial_scale=TINY_SPATIAL_SCALE)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            losses.append(loss.item())
        results.append((losses, [p.detach().clone() for p in params]))
    assert results[1][0] == pytest.approx(results[0][0], rel=1e-5)
    # The fused kernel orders its float32 arithmetic differently: after 3 steps of lr 1e-2 the weights agree to
    # ~1e-5 (0.1 % of one update), not bit for bit.
    for fused, plain in zip(results[1][1], results[0][1], strict=True):
        torch.testing.assert_close(fused, plain, rtol=1e-3, atol=1e-5)
    assert any((p != 0).any() for p in results[1][1])
