"""compare.mp4's labels for every kind of variant: the base, an adapter at a strength, and a run's checkpoint
(`run@step-N`), each written in full over its own tile under the prompt row."""

from __future__ import annotations

import numpy as np
from PIL import ImageFont

from trainer.generate import FONT_SIZE, LINE_HEIGHT, TEXT_MARGIN, side_by_side, variant_label, wrap_text

PROMPT = "The left arm pushes the red cube to the right."


def test_a_checkpoint_variant_is_labelled_with_its_step_and_strength_in_full():
    records = [{"name": "base"}, {"name": "robot-lora", "scale": 1.0}, {"name": "robot-lora@step-600", "scale": 0.5}]
    labels = [variant_label(r) for r in records]
    assert labels == ["base", "robot-lora (strength 1)", "robot-lora@step-600 (strength 0.5)"]
    font = ImageFont.load_default(size=FONT_SIZE)
    wrapped = [wrap_text(label, 64 - 2 * TEXT_MARGIN, font) for label in labels]
    for label, lines in zip(labels, wrapped):
        assert "".join(lines).replace(" ", "") == label.replace(" ", "")  # nothing cut, the step included
    frames = np.zeros((2, 64, 64, 3), np.uint8)
    out = side_by_side([(label, frames) for label in labels], caption=PROMPT)
    caption = len(wrap_text(PROMPT, 3 * 64 - 2 * TEXT_MARGIN, font)) * LINE_HEIGHT + 2
    header = max(map(len, wrapped)) * LINE_HEIGHT + 2
    assert out.shape == (2, caption + header + 64 + (caption + header) % 2, 3 * 64, 3)
    assert (out[0, :caption].max(axis=2) > 200).any()  # the prompt row has text
    for tile in range(3):  # and every tile's label is drawn over that tile
        assert (out[0, caption : caption + header, tile * 64 : (tile + 1) * 64].max(axis=2) > 200).any()
