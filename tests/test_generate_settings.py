"""GenerateSettings: one set of generation settings (defaults, presets, bounds) and one video-shape rule, used by
the generate and evaluate commands, the worker, the studio, the training config and the sample data; and the
labels of compare.mp4."""

from __future__ import annotations

import argparse
import inspect

import numpy as np
import pytest

from trainer.spec.generate_settings import (
    PRESETS,
    SETTING_NAMES,
    GenerateSettings,
    preset_values,
    type_problems,
    values_from_args,
)
from trainer.spec.video_shape import video_shape_problems


def test_defaults_are_the_pipelines_own():
    from diffusers import Cosmos2_5_PredictBasePipeline

    call = inspect.signature(Cosmos2_5_PredictBasePipeline.__call__).parameters
    settings = GenerateSettings()
    assert settings.steps == call["num_inference_steps"].default == 36
    assert settings.guidance == call["guidance_scale"].default == 7.0
    assert (settings.height, settings.width, settings.num_frames) == (
        call["height"].default,
        call["width"].default,
        call["num_frames"].default,
    )
    assert settings.problems() == []


def _cli_parser(command: str) -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser()
    importlib.import_module(f"trainer.cli.{command}").add_arguments(parser)
    return parser


@pytest.mark.parametrize("command", ["generate", "evaluate"])
def test_every_setting_is_an_option_with_its_help(command):
    parser = _cli_parser(command)
    options = {opt: action for action in parser._actions for opt in action.option_strings}
    for name in SETTING_NAMES:
        option = "--no-guardrail" if name == "guardrail" else f"--{name.replace('_', '-')}"
        assert option in options, option
        assert options[option].help.startswith(GenerateSettings.__dataclass_fields__[name].metadata["help"])


def test_the_tiny_preset_is_explicit_and_follows_the_model():
    parser = _cli_parser("generate")
    base = ["--image", "x.png", "--prompt", "p", "--out", "o"]
    tiny = values_from_args(parser.parse_args(base))
    assert tiny == preset_values("tiny") and (tiny["steps"], tiny["guidance"], tiny["height"]) == (12, 1.0, 64)
    real = values_from_args(parser.parse_args([*base, "--model", "nvidia/Cosmos-Predict2.5-2B"]))
    assert real == {**preset_values("model-default"), "model": "nvidia/Cosmos-Predict2.5-2B"}
    assert (real["steps"], real["guidance"], real["num_frames"]) == (36, 7.0, 93)
    chosen = values_from_args(parser.parse_args([*base, "--preset", "recipe", "--steps", "4", "--no-guardrail"]))
    assert (chosen["height"], chosen["width"], chosen["steps"], chosen["guardrail"]) == (432, 768, 4, False)
    assert set(PRESETS["tiny"]) <= set(SETTING_NAMES)


def test_evaluation_starts_from_the_same_preset():
    from trainer.evaluate import EvalSettings

    settings = EvalSettings.from_preset(data="sample:held_out")
    assert settings.settings() == GenerateSettings(**preset_values("tiny"))
    parser = _cli_parser("evaluate")
    assert values_from_args(parser.parse_args([])) == preset_values("tiny")


def test_bounds_and_types_are_named_by_field():
    problems = [str(p) for p in GenerateSettings(steps=0, guidance=0.5, fps=0, seed=-1, model=" ").problems()]
    assert problems == [
        'model: must be "tiny", a local folder or a Hub id (got empty)',
        "seed: must be between 0 and 4294967295 (got -1)",
        "steps: must be between 1 and 200 (got 0)",
        "guidance: must be between 1 and 30 (got 0.5)",
        "fps: must be between 1 and 240 (got 0)",
    ]
    assert [str(p) for p in type_problems({"steps": "3", "guardrail": 1, "guidance": 2})] == [
        "guardrail: must be true or false (got 1)",
        "steps: must be a whole number (got '3')",
    ]


@pytest.mark.parametrize("height,width,num_frames", [(60, 64, 9), (64, 100, 9), (64, 64, 10), (64, 64, 5)])
def test_one_video_shape_rule_everywhere(height, width, num_frames):
    """The training config, a frame- and a clip-conditioned request, evaluation, the studio and the sample data
    all report exactly the rule's sentences; the fewest frames follow the conditioning latent frames."""
    from studio.generation_client import settings_problems
    from trainer.evaluate import EvalSettings
    from trainer.spec.config import TrainConfig
    from trainer.tinyworld.drawing import clip_shape_problems

    def rule(cond: int) -> list[str]:
        return [f"{name}: {message}" for name, message in video_shape_problems(height, width, num_frames, cond)]

    def shape_only(problems: list) -> list[str]:
        return [str(p) for p in problems if p.field in ("height", "width", "num_frames")]

    one, two = rule(1), rule(2)
    assert two and (one or num_frames == 5)  # 5 frames: enough for 1 conditioning latent frame, not for 2
    shape = {"height": height, "width": width, "num_frames": num_frames}
    assert shape_only(TrainConfig(data="d", **shape).validate()) == one
    assert shape_only(GenerateSettings(**shape).problems(1)) == one
    assert shape_only(GenerateSettings(**shape).problems(2)) == two
    assert shape_only(EvalSettings(**shape).problems()) == one
    assert shape_only(settings_problems({**preset_values("tiny"), **shape}, 2)) == two
    if height == width:
        assert clip_shape_problems(height, num_frames) == [
            f"{p.replace(':', '', 1).replace('height', 'size')}." for p in two
        ]


def test_a_clip_request_needs_two_latent_frames_of_output():
    from trainer.spec.config import Problem

    problems = GenerateSettings(height=64, width=64, num_frames=5).problems(conditional_latent_frames=2)
    assert problems == [
        Problem("num_frames", "must be 4k+1 and at least 9 with 2 conditioning latent frames, e.g. 9, 17 or 93 (got 5)")
    ]


# --- compare.mp4 labels ---------------------------------------------------------------------------------------
def test_labels_wrap_to_the_tile_and_keep_every_character():
    from PIL import ImageFont

    from trainer.generate import FONT_SIZE, LINE_HEIGHT, TEXT_MARGIN, side_by_side, variant_label, wrap_text

    label = variant_label({"name": "robot-lora-r8", "scale": 0.8})
    assert label == "robot-lora-r8 (strength 0.8)" and variant_label({"name": "base"}) == "base"
    font = ImageFont.load_default(size=FONT_SIZE)
    width = 64 - 2 * TEXT_MARGIN
    for text in (label, "a-very-long-adapter-name-without-spaces-r16 (strength 1.25)"):
        lines = wrap_text(text, width, font)
        assert all(font.getlength(line) <= width for line in lines)
        assert " ".join(lines).replace(" ", "") == text.replace(" ", "")  # nothing cut
        assert lines[0].startswith(text.split()[0][:5])
    frames = np.zeros((3, 64, 64, 3), np.uint8)
    prompt = "The right arm picks up the yellow banana and places it in the bowl."
    label_rows = len(wrap_text(label, width, font))
    caption_rows = len(wrap_text(prompt, 128 - 2 * TEXT_MARGIN, font))
    out = side_by_side([("base", frames), (label, frames)], caption=prompt)
    expected = caption_rows * LINE_HEIGHT + 2 + label_rows * LINE_HEIGHT + 2 + 64
    assert out.shape == (3, expected + expected % 2, 128, 3)
    assert label_rows == 3 and caption_rows >= 3
    header = out[0, : expected - 64]
    assert (header[:, 64:].max(axis=2) > 200).any()  # the adapter's label is drawn in its own tile


def test_the_reference_doc_is_current():
    from pathlib import Path

    from trainer.spec.generate_settings import markdown_reference

    doc = Path(__file__).resolve().parents[1] / "docs" / "generate.md"
    assert doc.read_text() == markdown_reference(), "regenerate docs/generate.md from markdown_reference()"
