"""The Train tab's form (studio.train_form): its fields come from the shared config, it builds the config the trainer
validates, and the presets, size labels and run names it offers."""

from __future__ import annotations


def test_form_fields_come_from_the_config_and_defaults_are_the_cpu_preset():
    from studio.train_form import ADVANCED_FIELDS, BASIC_FIELDS, FORM_FIELDS, field_kind, preset_values
    from trainer.spec.config import FIELD_NAMES, field_help

    assert set(FORM_FIELDS) == set(FIELD_NAMES) - {"output_dir", "resume"} and len(FORM_FIELDS) == len(set(FORM_FIELDS))
    assert all(field_help()[n]["group"] == "basic" for n in BASIC_FIELDS)
    assert {"rank", "alpha", "learning_rate", "max_steps", "epochs", "adapter", "model", "data"} <= set(BASIC_FIELDS)
    assert {"cache", "mixed_precision", "target_modules", "conditional_frames"} <= set(ADVANCED_FIELDS)
    kinds = {n: field_kind(n) for n in ("adapter", "rank", "alpha", "compile", "target_modules", "conditional_frames")}
    assert kinds == {
        "adapter": "choice",
        "rank": "int",
        "alpha": "float",
        "compile": "bool",
        "target_modules": "list",
        "conditional_frames": "table",
    }
    values = preset_values("cpu-tiny")
    assert (values["model"], values["data"], values["rank"], values["height"]) == ("tiny", "sample", 32, 64)
    assert values["target_modules"] == "to_q, to_k, to_v, to_out.0, ff.net.0.proj, ff.net.2"
    assert values["conditional_frames"] == "1: 0.5, 2: 0.5"


def test_form_builds_the_same_config_the_trainer_validates():
    from studio.train_form import build_config, preset_values

    values = preset_values("cpu-tiny") | {
        "name": "a",
        "max_steps": 5.0,
        "target_modules": "to_q, to_k",
        "conditional_frames": "1: 1",
    }
    form = build_config(values)
    assert form.problems == [] and form.config is not None
    assert (form.config.max_steps, form.config.target_modules, form.config.conditional_frames) == (
        5,
        ["to_q", "to_k"],
        {1: 1.0},
    )
    assert form.raw["output_dir"] == "runs" and form.raw == form.config.to_dict()

    bad = build_config(values | {"rank": 0, "height": 65, "alpha": None, "conditional_frames": "one half"})
    assert bad.config is None
    assert bad.fields_with_problems == ["alpha", "conditional_frames", "rank", "height"]
    assert "rank: must be at least 1 (got 0)" in [str(p) for p in bad.problems]
    assert "alpha: must be a number (the box is empty)" in [str(p) for p in bad.problems]


def test_presets_size_labels_and_unique_names():
    from studio.train_form import CUSTOM_SIZE, build_config, preset_names, preset_values, size_label, unique_run_name

    assert {"cpu-tiny", "gpu-recipe"} <= set(preset_names())
    for name in preset_names():  # every shipped preset fills a valid form
        assert build_config(preset_values(name)).problems == [], name
    assert size_label(432, 768, 93) == "432x768, 93 frames (recipe)" and size_label(64, 80, 9) == CUSTOM_SIZE
    assert unique_run_name("tiny-lora", set()) == "tiny-lora"
    assert unique_run_name("tiny-lora", {"tiny-lora", "tiny-lora-2"}) == "tiny-lora-3"
    assert unique_run_name("tiny-lora-2", {"tiny-lora", "tiny-lora-2"}) == "tiny-lora-3"
