"""Generate & compare never drops a picked variant silently: one gone since the page listed it (a checkpoint
the trainer pruned with keep_checkpoints, a deleted adapter) or one that cannot be rendered is named."""

from __future__ import annotations

import re

import gradio as gr
import pytest
from settingsfactory import QUICK_SETTINGS as SETTINGS

from studio import tab_generate
from studio.workspace import open_studio


@pytest.fixture
def studio(tmp_path):
    studio = open_studio(tmp_path / "ws", read_only=True)  # read-only: no queue watcher
    old = studio.workspace.runs / "robot" / "checkpoints" / "step-1"
    old.mkdir(parents=True)
    (old / "adapter_state.safetensors").write_bytes(b"weights")
    (old / "DONE").write_text("complete\n")
    yield studio
    studio.close()


@pytest.mark.parametrize(
    "picked, message",
    [
        (
            "robot@step-200",
            r"^No adapter or checkpoint named 'robot@step-200' in the workspace; pick one from the list\.$",
        ),
        ("robot@step-1", r"^Checkpoint 'robot@step-1' was saved before checkpoints held a loadable adapter"),
    ],
)
def test_a_picked_variant_that_is_gone_or_unusable_is_named(studio, picked, message):
    form = {
        "mode": tab_generate.FRAME,
        "image": "frame.png",
        "video": None,
        "prompt": "a robot",
        **SETTINGS,
        "adapters": [picked],
        "strengths": None,
    }
    with pytest.raises(gr.Error) as err:
        next(tab_generate.generate(studio, None, **form))
    assert re.match(message, err.value.message)
    assert not studio.generation.busy and studio.generation._worker is None  # nothing was rendered
