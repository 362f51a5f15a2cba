"""The memory estimate: exact parameter counts, the activation fit against saved-tensor bytes measured at a size
the fit never saw (tiny model and the real block architecture), `train --dry-run`, and torch-freedom."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import torch
from conftest import REPO, run_trainer

from trainer import adapters, memory_profile
from trainer.spec import memory
from trainer.spec.config import TrainConfig

SHIPPED = json.loads(memory.PROFILES_FILE.read_text())
CHECK_LAYERS, CHECK_RANK = 3, 8


def _predicted(coef: list[float], tokens: int) -> float:
    return sum(c * f for c, f in zip(coef, memory_profile.features(tokens, CHECK_LAYERS, CHECK_RANK)))


@pytest.mark.parametrize("model", memory_profile.SHIPPED)
def test_shipped_profiles_are_those_of_the_current_configs(model):
    configs = memory_profile.component_configs(memory_profile.shipped_source(model))
    profile = SHIPPED[model]
    assert profile["configs_sha256"] == memory_profile.configs_digest(configs), "rerun python -m trainer.memory_profile"
    assert profile["parameters"] == memory_profile.count_parameters(configs)
    assert profile["pixels_per_token"] == memory_profile.pixels_per_token(configs)


def test_the_2b_parameter_counts_are_the_real_models():
    params = SHIPPED["nvidia/Cosmos-Predict2.5-2B"]["parameters"]
    assert params["transformer"] == 2_059_174_912  # the count bench/RESULTS.md and the model card state
    assert params["layers"] == 28 and params["hidden"] == 2048


@pytest.mark.parametrize("adapter", ["lora", "dora"])
def test_adapter_parameters_are_what_peft_creates(adapter):
    from trainer.memory_profile import base_transformer

    profile = SHIPPED["tiny"]
    config = memory_profile.component_configs(memory_profile.shipped_source("tiny"))["transformer"]
    transformer = base_transformer(config, profile["parameters"]["layers"], "fp32")
    cfg = TrainConfig(data="x", rank=6, alpha=6.0, adapter=adapter, target_modules=["to_q", "ff.net.2"])
    adapters.attach(transformer, cfg)
    created = sum(p.numel() for p in adapters.trainable_parameters(transformer))
    assert memory.adapter_parameters(profile, cfg.target_modules, 6, adapter) == created


@pytest.mark.parametrize(
    ("model", "layers_to_build"),
    [("tiny", CHECK_LAYERS), ("nvidia/Cosmos-Predict2.5-2B", CHECK_LAYERS)],
)
def test_activation_fit_predicts_saved_bytes_at_an_unseen_size(model, layers_to_build):
    """The shipped fit (1 and 2 blocks, smaller shapes, ranks 4 and 16) against bytes measured now with 3 blocks,
    rank 8 and a larger latent shape; the real architecture at its real width, on the CPU."""
    config = memory_profile.component_configs(memory_profile.shipped_source(model))["transformer"]
    fits = SHIPPED[model]["activations"]["lora"]["bf16"]
    base = memory_profile.base_transformer(config, layers_to_build, "bf16")
    tokens = memory_profile.tokens_of(memory_profile.CHECK_SHAPE)
    assert tokens > max(memory_profile.tokens_of(s) for s in memory_profile.FIT_SHAPES)
    for policy in memory_profile.POLICIES:
        measured = memory_profile.measure_saved_bytes(
            base, memory_profile.CHECK_SHAPE, CHECK_RANK, "lora", "bf16", policy
        )
        assert _predicted(fits[policy], tokens) == pytest.approx(measured, rel=0.10), policy


def test_tiny_dora_fit_predicts_saved_bytes_at_an_unseen_size():
    config = memory_profile.component_configs(memory_profile.shipped_source("tiny"))["transformer"]
    base = memory_profile.base_transformer(config, CHECK_LAYERS, "fp32")
    measured = memory_profile.measure_saved_bytes(base, memory_profile.CHECK_SHAPE, CHECK_RANK, "dora", "fp32", "off")
    fit = SHIPPED["tiny"]["activations"]["dora"]["fp32"]["off"]
    assert _predicted(fit, memory_profile.tokens_of(memory_profile.CHECK_SHAPE)) == pytest.approx(measured, rel=0.10)


# --------------------------------------------------------------------------------------------- the estimate
def _real(**overrides) -> TrainConfig:
    return TrainConfig(data="x", model="nvidia/Cosmos-Predict2.5-2B", **overrides)


def test_estimate_parts_and_their_arithmetic():
    cfg = _real(cache="off", gradient_checkpointing=False)
    estimate = memory.training_estimate(cfg)
    parts = {p.name: p.bytes for p in estimate.parts}
    params = SHIPPED["nvidia/Cosmos-Predict2.5-2B"]["parameters"]
    assert parts["frozen weights"] == params["transformer"] * 2
    assert parts["encoders"] == (params["vae"] + params["text_encoder"]) * 2
    assert parts["trainable weights+grads+AdamW"] == 16 * memory.adapter_parameters(
        SHIPPED["nvidia/Cosmos-Predict2.5-2B"], cfg.target_modules, 32, "lora"
    )
    assert parts["margin"] == pytest.approx(0.1 * (estimate.total - parts["margin"]))
    cached = {p.name: p.bytes for p in memory.training_estimate(_real(gradient_checkpointing=False)).parts}
    assert "encoders" not in cached  # the cache serves every step: the encoders are not on the GPU
    assert cached["frozen weights"] == (params["transformer"] - params["crossattn_proj"]) * 2


def test_checkpointing_orders_the_activation_memory_and_the_cache_build_comes_first():
    estimates = [
        memory.training_estimate(_real(gradient_checkpointing=on, checkpointing_policy=policy))
        for on, policy in ((False, "every_block"), (True, "selective"), (True, "every_block"))
    ]
    activations = [next(p.bytes for p in e.parts if p.name == "activations") for e in estimates]
    assert activations[0] > 10 * activations[1] and activations[1] > activations[2]
    params = SHIPPED["nvidia/Cosmos-Predict2.5-2B"]["parameters"]
    build = (params["text_encoder"] + params["crossattn_proj"]) * 2 * 1.1  # the text encoder alone, then the VAE
    assert estimates[2].before.bytes == pytest.approx(build)
    assert estimates[2].total == max(sum(p.bytes for p in estimates[2].parts), build)
    complete = memory.training_estimate(_real(), cache_complete=True)
    assert complete.before is None and complete.total == sum(p.bytes for p in complete.parts)


def test_the_cheapest_fix_is_named_and_fits():
    cfg = _real(cache="off", gradient_checkpointing=False)
    assert not memory.training_estimate(cfg).fits(24)
    fix = memory.cheapest_fix(cfg, 24)
    assert fix.startswith("set cache auto")
    assert memory.training_estimate(_real(gradient_checkpointing=True, checkpointing_policy="every_block")).fits(80)
    assert memory.cheapest_fix(_real(), 80) is None  # already fits: nothing to change


def test_dry_run_prints_the_estimate_and_the_verdict(tmp_path):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"data": "sample", "model": "nvidia/Cosmos-Predict2.5-2B", "cache": "off"}))
    result = run_trainer("train", "--config", str(config), "--dry-run", "--gpu-gb", "24")
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert out.startswith("predicted peak GPU memory of training 'run': ")
    for part in ("frozen weights", "trainable weights+grads+AdamW", "activations", "encoders", "margin"):
        assert f"  {part}" in out
    assert "does not fit a 24 GB card: 34.1 GiB needed, 23.0 GiB usable; to fit: set cache auto\n" in out
    assert not (tmp_path / "runs").exists()


def test_the_estimator_and_the_form_never_import_torch():
    code = (
        "import sys; from studio.memory_notes import training_markdown, generation_markdown; "
        "from studio.train_form import build_config, preset_values, DEFAULT_PRESET; "
        "form = build_config(preset_values(DEFAULT_PRESET)); text = training_markdown(form.config); "
        "assert 'Memory estimate' in text and 'GiB' in text, text; "
        "text = generation_markdown('nvidia/Cosmos-Predict2.5-2B', 704, 1280, 93, 'bf16', 'offload'); "
        "assert text.startswith('**Memory** (offload: offload)') and 'largest component' in text, text; "
        "assert 'torch' not in sys.modules; print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "ok", result.stderr[-2000:]


def test_an_unknown_model_gets_no_guess():
    assert memory.training_estimate(TrainConfig(data="x", model="someone/else")) is None
    assert memory.training_report(TrainConfig(data="x", model="someone/else"))[0].startswith("no memory estimate")


@pytest.fixture(autouse=True)
def _no_visible_gpu(monkeypatch):
    monkeypatch.setattr(memory, "visible_gpu_gib", lambda: None)
    torch.manual_seed(0)


def test_the_machine_check_refuses_only_what_cannot_fit_even_without_the_margin():
    from trainer.spec.machine import Machine, config_problems_on

    uncached = _real(cache="off", gradient_checkpointing=False)  # ~230 GiB predicted
    assert config_problems_on(uncached, Machine(gpu=True)) == []  # the GPU's memory unknown: not judged
    [problem] = config_problems_on(uncached, Machine(gpu=True, memory_gib=80))
    assert problem.field == "cache"
    assert str(problem) == (
        "cache: the run needs about 229.8 GiB of GPU memory and this 80 GiB GPU leaves 79.0 GiB; set cache auto, "
        "then gradient_checkpointing on, selective (docs/memory.md)"
    )
    assert config_problems_on(_real(), Machine(gpu=True, memory_gib=24)) == []
    assert config_problems_on(TrainConfig(data="x", model="someone/else"), Machine(gpu=True, memory_gib=8)) == []


def test_dry_run_on_a_model_folder_stores_its_profile_once(tmp_path):
    """A folder with the tiny model's configs: parameters counted on the meta device, the tiny model's activation
    fit reused (same block shape), stored in the user cache where the torch-free estimator finds it."""
    from trainer.spec.embedded import tiny_model_dir

    folder = tmp_path / "model"
    for name in ("transformer", "vae", "text_encoder"):
        (folder / name).mkdir(parents=True)
        (folder / name / "config.json").write_text((tiny_model_dir() / name / "config.json").read_text())
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"data": "sample", "model": str(folder), "height": 64, "width": 64, "num_frames": 9}))
    assert memory.load_profile(str(folder)) is None
    result = run_trainer("train", "--config", str(config), "--dry-run", "--gpu-gb", "16")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "measuring the memory profile" in result.stderr and "fits a 16 GB card" in result.stdout
    stored = memory.load_profile(str(folder))
    assert stored["parameters"] == SHIPPED["tiny"]["parameters"]
    assert stored["activations"] == SHIPPED["tiny"]["activations"]
    assert memory.stored_profile_path(str(folder)).exists()


def test_a_total_below_a_gib_is_shown_in_mib_not_as_zero():
    """The tiny model's estimate (the studio's default) reads in MiB; the 2B model's stays in GiB."""
    lines = memory.training_report(TrainConfig(data="sample", model="tiny", height=64, width=64, num_frames=17))
    total = re.fullmatch(r"predicted peak GPU memory of training 'run': (\d+) MiB", lines[0])
    assert total and 1 <= int(total.group(1)) < 1024, lines[0]
    assert f"fits a 16 GB card: {total.group(1)} MiB of 15.0 GiB usable" in lines
    assert memory.size_text(34.06) == "34.1 GiB" and memory.size_text(0.02) == "20 MiB"
