"""What the Train tab's handlers tell the user: a preset saved again under its name says it replaced the earlier
one (never a silent overwrite); a run queued behind a generation or an evaluation on the GPU says what it waits
for."""

from __future__ import annotations

import json

import gradio as gr
import pytest
from test_studio_faults import studio  # noqa: F401 (fixture)

from studio import tab_train
from studio.device import Device
from studio.run_queue import RunQueue
from studio.train_form import FORM_FIELDS, preset_values


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
    assert shown == [
        "Preset 'mine' saved in the workspace's presets/.",
        "Preset 'mine' replaced: it now holds this form (the earlier one is gone).",
    ]
    assert json.loads((studio.workspace.root / "presets" / "mine.json").read_text())["rank"] == 4


def test_a_run_queued_behind_the_gpus_other_work_says_what_it_waits_for(studio, shown):  # noqa: F811
    device = Device(studio.jobs, gpu=True)
    device.take_now("generation", "someone")  # a generation renders on the GPU
    studio.queue = RunQueue(studio.jobs, device)
    values = preset_values("cpu-tiny") | {"name": "waits"}
    tab_train.start_run(studio, *(values[n] for n in FORM_FIELDS))
    assert shown == [
        "Run 'waits' is queued (position 1 of 1 in the queue); it starts when the generation or "
        "evaluation using the GPU ends."
    ]
