"""The one config: strict parsing, every problem listed by field, shipped presets valid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainer.spec.config import ConfigError, TrainConfig, config_from_dict, field_help, load_config

PRESETS = sorted((Path(__file__).resolve().parents[1] / "trainer" / "presets").glob("*.toml"))


def test_rejection_lists_every_problem_by_field():
    raw = {"data": "d", "rankk": 4, "rank": 0, "num_frames": 10, "width": 100, "learning_rate": float("nan")}
    with pytest.raises(ConfigError) as err:
        config_from_dict(raw)
    fields = sorted(p.field for p in err.value.problems)
    assert fields == ["learning_rate", "num_frames", "rank", "rankk", "width"]
    text = str(err.value)
    assert "did you mean 'rank'" in text
    assert "5 problem(s)" in text


def test_types_are_checked_not_coerced():
    with pytest.raises(ConfigError) as err:
        config_from_dict({"data": "d", "rank": "32", "skip_invalid": "yes", "adapter": "lokr"})
    by_field = {p.field: str(p) for p in err.value.problems}
    assert set(by_field) == {"rank", "skip_invalid", "adapter"}
    assert "'lora', 'dora'" in by_field["adapter"]


def test_conditional_frames_from_json_keys_and_checked_against_frames():
    cfg = config_from_dict({"data": "d", "conditional_frames": {"1": 0.25, "2": 0.75}})
    assert cfg.conditional_frames == {1: 0.25, 2: 0.75}
    with pytest.raises(ConfigError) as err:
        config_from_dict({"data": "d", "num_frames": 5, "conditional_frames": {"2": 0.6}})
    assert [p.field for p in err.value.problems] == ["conditional_frames", "conditional_frames"]


def test_defaults_are_the_recipe():
    cfg = TrainConfig(data="d")
    assert (cfg.rank, cfg.alpha, cfg.adapter, cfg.cfg_dropout) == (32, 32.0, "lora", 0.2)
    assert cfg.target_modules == ["to_q", "to_k", "to_v", "to_out.0", "ff.net.0.proj", "ff.net.2"]
    assert cfg.conditional_frames == {1: 0.5, 2: 0.5}
    assert (cfg.height, cfg.width, cfg.num_frames) == (432, 768, 93)
    assert cfg.learning_rate == 2**-14.5
    assert cfg.validate() == []


def test_json_and_toml_files(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"data": "x", "rank": 8}))
    (tmp_path / "b.toml").write_text('data = "x"\nrank = 8\nconditional_frames = { 1 = 1.0 }\n')
    assert load_config(tmp_path / "a.json").rank == load_config(tmp_path / "b.toml").rank == 8
    (tmp_path / "bad.toml").write_text("rank = = 3")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path / "bad.toml")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.json")


@pytest.mark.parametrize("preset", PRESETS, ids=[p.stem for p in PRESETS])
def test_every_shipped_preset_is_valid(preset):
    cfg = load_config(preset)
    assert cfg.validate() == []
    assert cfg.name and cfg.data


def test_presets_say_what_they_promise():
    gpu = load_config(PRESETS[[p.stem for p in PRESETS].index("gpu-recipe")])
    assert (gpu.height, gpu.width, gpu.num_frames, gpu.rank, gpu.alpha) == (432, 768, 93, 32, 32)
    assert gpu.mixed_precision == "bf16" and gpu.allow_tf32 and gpu.gradient_checkpointing
    cpu = load_config(PRESETS[[p.stem for p in PRESETS].index("cpu-tiny")])
    assert cpu.model == "tiny" and cpu.mixed_precision == "no"


def test_field_help_covers_every_field_for_the_form():
    help_ = field_help()
    assert set(help_) == set(TrainConfig.__dataclass_fields__)
    assert all(entry["help"] for entry in help_.values())
    assert help_["adapter"]["choices"] == ["lora", "dora"]
    assert {"rank", "alpha", "learning_rate", "adapter", "model", "data"} <= {
        k for k, v in help_.items() if v["group"] == "basic"
    }


def test_docs_config_reference_is_current():
    from trainer.spec.config import markdown_reference

    doc = Path(__file__).resolve().parents[1] / "docs" / "config.md"
    assert doc.read_text() == markdown_reference(), (
        "regenerate docs/config.md from trainer.spec.config.markdown_reference()"
    )


def test_text_values_are_bounded():
    from trainer.spec.bounds import MAX_TEXT

    assert config_from_dict({"data": "d" * MAX_TEXT, "prompt_prefix": "p" * MAX_TEXT})  # at the bound: fine
    with pytest.raises(ConfigError) as err:
        config_from_dict(
            {
                "data": "d",
                "prompt_prefix": "p" * 10**6,
                "target_modules": ["to_q" * 2000],
                "sample_prompts": [{"image": "a.png", "prompt": "a robot " * 1000}],
            }
        )
    assert [str(p) for p in err.value.problems] == [
        f"target_modules: text of at most {MAX_TEXT} characters (got 8000); shorten it",
        f"prompt_prefix: text of at most {MAX_TEXT} characters (got 1000000); shorten it",
        f"sample_prompts: text of at most {MAX_TEXT} characters (got 8000); shorten it",
    ]


def test_a_config_is_judged_against_the_machine_in_one_place(monkeypatch):
    from trainer.spec import machine
    from trainer.spec.config import Problem
    from trainer.spec.machine import Machine, config_problems_on

    big = TrainConfig(data="d", height=1024, width=1024, num_frames=9)
    assert config_problems_on(big, Machine(gpu=True)) == []
    assert config_problems_on(big, Machine(gpu=False)) == [
        Problem(
            "height",
            "1024x1024x9 frames is 12288 tokens, above the 3645 (240x432x33) allowed on a CPU (no GPU is visible); "
            "lower height, width or num_frames",
        )
    ]
    assert [p.field for p in config_problems_on(TrainConfig(data="d", rank=0), Machine(gpu=True))] == ["rank"]
    verdict = Problem("batch_size", "needs 90 GiB, the GPU has 80 GiB; lower batch_size")
    monkeypatch.setattr(machine, "memory_problem", lambda config, on: verdict if on.memory_gib == 80 else None)
    assert config_problems_on(big, Machine(gpu=True, memory_gib=80)) == [verdict]
