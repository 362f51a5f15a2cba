"""What the Train tab's handlers tell the user when they change saved things: a preset saved again under its
name says it replaced the earlier one (never a silent overwrite)."""

from __future__ import annotations

import json

import gradio as gr
import pytest

from studio import tab_train
from studio.train_form import FORM_FIELDS, preset_values
from test_studio_faults import studio  # noqa: F401 (fixture)


@pytest.fixture
def shown(monkeypatch) -> list[str]:
    messages: list[str] = []
    monkeypatch.setattr(gr, "Warning", lambda message, *a, **k: messages.append(message))
    monkeypatch.setattr(gr, "Info", lambda message, *a, **k: messages.append(message))
    return messages


def test_saving_a_preset_again_says_it_replaced_the_earlier_one(studio, shown):  # noqa: F811
    values = preset_values("cpu-tiny")
    tab_train.save_preset(studio, "mine", *(values[n] for n in FORM_FIELDS))
    tab_train.save_preset(studio, "mine", *((values | {"rank": 4})[n] for n in FORM_FIELDS))
    assert shown == ["Preset 'mine' saved in the workspace's presets/.",
                     "Preset 'mine' replaced: it now holds this form (the earlier one is gone)."]
    assert json.loads((studio.workspace.root / "presets" / "mine.json").read_text())["rank"] == 4
