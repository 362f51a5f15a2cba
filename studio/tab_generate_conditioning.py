"""Generate & compare tab, what a generation starts from: a first frame (an image) or a first clip (a video),
uploaded or picked from a dataset clip, whose caption fills the prompt."""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace
from typing import Any

import gradio as gr

from studio import ground_truth
from studio.folders import REFUSALS
from studio.named_outputs import NamedOutputs
from studio.workspace import Studio
from trainer.spec.embedded import SAMPLE_DATA
from trainer.video import VideoError, probe_video

FRAME, CLIP = "first frame (image)", "first clip (video)"
CONDITIONAL_LATENT_FRAMES = {FRAME: 1, CLIP: 2}
INPUTS_DIR = "inputs"  # frames taken from dataset clips, under <workspace>/generations/


def list_clips(studio: Studio, name: str):
    try:
        keys = studio.datasets.clips(name)
    except REFUSALS as exc:
        gr.Warning(str(exc))
        return gr.update(choices=[], value=None)
    return gr.update(choices=keys, value=keys[0] if keys else None)


def pick(studio: Studio, mode: str, name: str, key: str, index: int) -> dict[str, Any]:
    """Fill the first frame (a PNG of frame `index`) or the first clip from a dataset clip, and its caption."""
    if not key:
        return {}
    picks = studio.generation.out_root / INPUTS_DIR
    try:
        path, caption = studio.datasets.clip(name, key)
        frames = gr.update(maximum=max(probe_video(path).frames - 1, 1))
        if mode == CLIP:
            ground_truth.remember(picks, path, name, key, 0)
            return {"video": str(path), "prompt": caption, "frame": frames}
        out = picks / "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        image = studio.datasets.frame_image(name, key, index, out)
        ground_truth.remember(picks, image, name, key, index)
        return {"image": str(image), "prompt": caption, "frame": frames}
    except (*REFUSALS, VideoError) as exc:
        gr.Warning(str(exc))
        return {}


def switch_mode(mode: str) -> dict[str, Any]:
    """Show the inputs of conditioning mode `mode`: the image and frame for a frame, the video for a clip."""
    return {
        "image": gr.update(visible=mode == FRAME),
        "video": gr.update(visible=mode == CLIP),
        "frame": gr.update(visible=mode == FRAME),
    }


# --- layout and wiring ------------------------------------------------------------------------------------
def layout(studio: Studio) -> SimpleNamespace:
    mode = gr.Radio(
        [FRAME, CLIP],
        value=FRAME,
        label="condition on",
        elem_id="gen-mode",
        info="The first frame (1 latent frame), or the first clip of 5 frames (2 latent frames).",
    )
    with gr.Row(equal_height=True):
        dataset = gr.Dropdown(
            studio.datasets.choices(), value=SAMPLE_DATA, label="from dataset", allow_custom_value=True, scale=2
        )
        clip = gr.Dropdown([], label="clip", scale=2, allow_custom_value=True, elem_id="gen-clip")
        frame = gr.Slider(0, 16, value=0, step=1, label="frame", scale=2)
    with gr.Row():
        image = gr.Image(type="filepath", label="first frame (upload or pick above)", height=200, elem_id="gen-image")
        video = gr.Video(
            label="first clip: a video whose first 5 frames condition (upload or pick above)",
            height=200,
            visible=False,
            elem_id="gen-video",
        )
    return SimpleNamespace(mode=mode, dataset=dataset, clip=clip, frame=frame, image=image, video=video)


def wire(studio: Studio, cond: SimpleNamespace, ui: dict[str, Any]) -> None:
    """A picked dataset clip fills the first frame (or clip) and the prompt (`ui`: the tab's components by name)."""
    private = {"api_visibility": "private"}
    picked = NamedOutputs(**{name: ui[name] for name in ("image", "video", "prompt", "frame")})
    choose = picked.wrap(partial(pick, studio))
    where = [cond.mode, cond.dataset, cond.clip, cond.frame]
    shown = NamedOutputs(image=cond.image, video=cond.video, frame=cond.frame)
    cond.mode.change(shown.wrap(switch_mode), cond.mode, shown.components, **private).then(
        choose, where, picked.components, **private
    )
    cond.dataset.change(partial(list_clips, studio), cond.dataset, cond.clip, **private)
    gr.on([cond.clip.change, cond.frame.release], choose, where, picked.components, **private)
