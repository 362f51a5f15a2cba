"""Generate & compare tab: the base model and any adapters from the same first frame(s), prompt and noise."""

from __future__ import annotations

import inspect
import json
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr
import pandas as pd

from studio.generation_client import base_model_mismatch
from studio.jobs import cuda_visible
from studio.train_form import CUSTOM_SIZE, HELP, SIZE_PRESETS, size_label
from studio.folders import REFUSALS
from studio.workspace import Studio
from trainer.tinyworld.builtin import SAMPLE_DATA
from trainer.bounds import MAX_INFERENCE_STEPS, generation_size_problem
from trainer.config import DEFAULT_HUB_MODEL, TINY_MODEL
from trainer.run_folder import CARD_SUMMARY_KEYS, COMPARE_RECORD_FILE, COMPARE_VIDEO_FILE, card_summary
from trainer.video import VideoError, probe_video

FRAME, CLIP = "initial frame (image)", "initial clip (video)"
INPUTS_DIR = "inputs"  # frames taken from dataset clips, under <workspace>/generations/
STRENGTH_COLUMNS = ["adapter", "strength"]
SUMMARY_COLUMNS = ["variant", "strength", "seconds", *CARD_SUMMARY_KEYS]
DEFAULT_SIZE = "64x64, 17 frames (tiny)"


def summary_table(record: dict) -> pd.DataFrame:
    """compare.json's per-variant seconds with each adapter's card, one row per variant."""
    rows = []
    for v in record.get("variants", []):
        card = v.get("card") or {}
        rows.append({"variant": v["name"], "strength": v.get("scale"), "seconds": v.get("seconds"),
                     **card_summary(card), "base_model": card.get("base_model") or record.get("model")})  # fmt: skip
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _strengths(table: Any) -> dict[str, float]:
    if table is None:
        return {}
    frame = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table.get("data", []), columns=STRENGTH_COLUMNS)
    out = {}
    for name, value in frame[STRENGTH_COLUMNS].itertuples(index=False):
        try:
            out[str(name)] = float(value)
        except (TypeError, ValueError):
            raise gr.Error(f"The strength of {name!r} must be a number (got {value!r}).") from None
    return out


# --- handlers (module level, `studio` bound with functools.partial) ----------------------------------------
def _bounds(studio: Studio, model: str, steps, height, width, num_frames) -> None:
    """The request's model, steps and size within what this studio allows (trainer.config's bounds)."""
    try:
        studio.datasets.paths.model(model)
    except REFUSALS as exc:
        raise gr.Error(str(exc)) from None
    if not 1 <= int(steps or 0) <= MAX_INFERENCE_STEPS:
        raise gr.Error(f"steps must be between 1 and {MAX_INFERENCE_STEPS} (got {steps}).")
    problem = generation_size_problem(int(height or 0), int(width or 0), int(num_frames or 0), gpu=cuda_visible())
    if problem:
        raise gr.Error(problem[0].upper() + problem[1:] + ".")


def generate(studio: Studio, mode, image, video, prompt, negative_prompt, seed, steps, guidance, height, width,
             num_frames, fps, model, revision, guardrail, adapters, strengths, session: gr.Request,
             progress=gr.Progress()):  # fmt: skip
    """Stream the worker's per-step progress, then the videos, the summary table and compare.json."""
    condition = image if mode == FRAME else video
    if not condition:
        raise gr.Error(f"Give an {mode.split(' (')[0]}: upload one or pick a dataset clip.")
    model = model or TINY_MODEL
    _bounds(studio, model, steps, height, width, num_frames)
    chosen = {a.name: a for a in studio.adapters.list() if a.name in (adapters or [])}
    why = base_model_mismatch(model, [(n, a.base_model) for n, a in chosen.items()])
    if why:
        raise gr.Error(why)
    scale = _strengths(strengths)
    request = {
        "model": model, "revision": revision or "", "guardrail": bool(guardrail), "prompt": prompt or "",
        "negative_prompt": negative_prompt or "", "image": condition if mode == FRAME else "",
        "video": condition if mode == CLIP else "",
        "adapters": [{"path": str(a.path), "scale": scale.get(n, 1.0)} for n, a in chosen.items()],
        "seed": int(seed or 0), "steps": int(steps or 1), "guidance": float(guidance or 0),
        "height": int(height or 0), "width": int(width or 0), "num_frames": int(num_frames or 0),
        "fps": int(fps or 8),
    }  # fmt: skip
    variants, per_variant, unchanged = ["base", *chosen], int(steps or 1), [gr.skip()] * 4
    try:
        for event in studio.generation.generate(request, owner=_owner(session)):
            if event["event"] == "queued":
                ahead = event["position"]
                yield (f"Queued: {ahead} generation{'s' if ahead > 1 else ''} ahead of this one "
                       f"(place {ahead + 1} in line); it starts when they finish.", *unchanged)  # fmt: skip
            elif event["event"] == "starting":
                yield "Starting the generation worker and loading the model…", *unchanged
            elif event["event"] == "progress":
                index = variants.index(event["variant"]) if event["variant"] in variants else 0
                progress((index * per_variant + event["step"], len(variants) * per_variant), desc=event["variant"],
                         unit="steps")  # fmt: skip
                yield (f"Rendering **{event['variant']}** (variant {index + 1} of {len(variants)}): "
                       f"step {event['step']}/{event['total']}", *unchanged)  # fmt: skip
            elif event["event"] == "done":
                yield _results(event["record"], Path(event["out_dir"]), studio.datasets.paths.redact)
    except REFUSALS as exc:
        raise gr.Error(studio.datasets.paths.redact(str(exc))) from None


def _owner(request: gr.Request | None) -> str | None:
    # The browser session that sent a generation is the one that may cancel it.
    return getattr(request, "session_hash", None) if request is not None else None


def cancel(studio: Studio, request: gr.Request):
    if studio.generation.cancel(_owner(request) or ""):
        return "Cancelling: the generation stops and the worker restarts for the next request."
    return "Nothing to cancel: no generation of this page is running or queued."


def _results(record: dict, out_dir: Path, redact) -> tuple:
    seconds = sum(v.get("seconds", 0) for v in record["variants"])
    # compare.json as text, not gr.JSON: its adapter entries hold a "path", which gradio_client takes for a file.
    return (f"Done: {len(record['variants'])} variants in {seconds:.1f} s, saved in "
            f"`generations/{out_dir.name}`.",
            {"record": record, "out_dir": str(out_dir)}, summary_table(record),
            [str(out_dir / COMPARE_VIDEO_FILE), str(out_dir / COMPARE_RECORD_FILE)],
            redact(json.dumps(record, indent=2)))  # fmt: skip


def adapter_choices(studio: Studio):
    return gr.update(choices=[a.name for a in studio.adapters.list()])


def sync_strengths(selected, table):
    current = _strengths(table) if table is not None and len(getattr(table, "index", [])) else {}
    return pd.DataFrame([(n, current.get(n, 1.0)) for n in selected or []], columns=STRENGTH_COLUMNS)


def list_clips(studio: Studio, name: str):
    try:
        keys = studio.datasets.clips(name)
    except REFUSALS as exc:
        gr.Warning(str(exc))
        return gr.update(choices=[], value=None)
    return gr.update(choices=keys, value=keys[0] if keys else None)


def pick(studio: Studio, mode: str, name: str, key: str, index: int):
    """Fill the initial frame (a PNG of frame `index`) or the initial clip from a dataset clip, and its caption."""
    if not key:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    try:
        path, caption = studio.datasets.clip(name, key)
        frames = gr.update(maximum=max(probe_video(path).frames - 1, 1))
        if mode == CLIP:
            return gr.skip(), str(path), caption, frames
        out = studio.generation.out_root / INPUTS_DIR / "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        return str(studio.datasets.frame_image(name, key, index, out)), gr.skip(), caption, frames
    except (*REFUSALS, VideoError) as exc:
        gr.Warning(str(exc))
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()


def switch_mode(mode: str):
    return gr.update(visible=mode == FRAME), gr.update(visible=mode == CLIP), gr.update(visible=mode == FRAME)


def apply_size(label: str):
    return list(SIZE_PRESETS[label]) if label in SIZE_PRESETS else [gr.skip()] * 3


def _bound(fn, studio: Studio):
    """`fn` with `studio` bound, as a plain (generator) function: Gradio finds a gr.Request parameter by the type
    hints of a function, which a functools.partial does not expose."""
    if inspect.isgeneratorfunction(fn):
        def bound(*args, **kwargs):
            yield from fn(studio, *args, **kwargs)
    else:
        def bound(*args, **kwargs):
            return fn(studio, *args, **kwargs)
    signature = inspect.signature(fn)
    bound.__signature__ = signature.replace(parameters=list(signature.parameters.values())[1:])
    bound.__annotations__ = {k: v for k, v in fn.__annotations__.items() if k != "studio"}
    bound.__name__ = fn.__name__
    return bound


# --- layout and wiring ------------------------------------------------------------------------------------
def _conditioning(studio: Studio) -> SimpleNamespace:
    mode = gr.Radio([FRAME, CLIP], value=FRAME, label="condition on", elem_id="gen-mode")
    with gr.Row(equal_height=True):
        dataset = gr.Dropdown(studio.datasets.choices(), value=SAMPLE_DATA, label="from dataset",
                              allow_custom_value=True, scale=2)  # fmt: skip
        clip = gr.Dropdown([], label="clip", scale=2, allow_custom_value=True, elem_id="gen-clip")
        frame = gr.Slider(0, 16, value=0, step=1, label="frame", scale=2)
    with gr.Row():
        image = gr.Image(type="filepath", label="initial frame (upload or pick above)", height=200,
                         elem_id="gen-image")  # fmt: skip
        video = gr.Video(label="initial clip (upload or pick above)", height=200, visible=False,
                         elem_id="gen-video")  # fmt: skip
    return SimpleNamespace(mode=mode, dataset=dataset, clip=clip, frame=frame, image=image, video=video)


def _settings() -> SimpleNamespace:
    prompt = gr.Textbox(label="prompt", lines=2, elem_id="gen-prompt")
    negative = gr.Textbox(label="negative_prompt", lines=1)
    with gr.Row():
        seed = gr.Number(0, precision=0, label="seed", info="Same seed: same initial noise for all.")
        steps = gr.Number(10, precision=0, label="steps", minimum=1, maximum=MAX_INFERENCE_STEPS, elem_id="gen-steps",
                          info=f"Denoising steps (at most {MAX_INFERENCE_STEPS}).")  # fmt: skip
        guidance = gr.Number(7.0, label="guidance", info="Classifier-free guidance scale.")
    with gr.Row():
        size = gr.Dropdown([*(k for k, v in SIZE_PRESETS.items() if v[2] >= 9), CUSTOM_SIZE], value=DEFAULT_SIZE,
                           label="size and frames", scale=2)  # fmt: skip
        height = gr.Number(64, precision=0, label="height", scale=1, elem_id="gen-height")
        width = gr.Number(64, precision=0, label="width", scale=1, elem_id="gen-width")
        num_frames = gr.Number(17, precision=0, label="num_frames", scale=1, elem_id="gen-frames")
        fps = gr.Number(8, precision=0, label="fps", scale=1)
    with gr.Accordion("Model", open=False):
        with gr.Row():
            model = gr.Dropdown([TINY_MODEL, DEFAULT_HUB_MODEL], value=TINY_MODEL, label="model",
                                allow_custom_value=True, info=HELP["model"]["help"])  # fmt: skip
            revision = gr.Textbox("", label="revision", info=HELP["revision"]["help"])
            guardrail = gr.Checkbox(True, label="guardrail",
                                    info="NVIDIA's cosmos_guardrail, required for NVIDIA's model; turning it off is "
                                         "your decision under NVIDIA's Open Model License (the tiny model needs none)")  # fmt: skip
    return SimpleNamespace(prompt=prompt, negative=negative, seed=seed, steps=steps, guidance=guidance, size=size,
                           height=height, width=width, num_frames=num_frames, fps=fps, model=model,
                           revision=revision, guardrail=guardrail)  # fmt: skip


def _variants(studio: Studio) -> SimpleNamespace:
    with gr.Row(equal_height=False):
        adapters = gr.CheckboxGroup([a.name for a in studio.adapters.list()], scale=4,
                                    label="adapters to compare with the base model",
                                    info="From finished runs and imported adapter folders.",
                                    elem_id="gen-adapters")  # fmt: skip
        refresh = gr.Button("Refresh", scale=0, min_width=90, size="sm")
    strengths = gr.Dataframe(pd.DataFrame(columns=STRENGTH_COLUMNS), label="strength of each adapter",
                             datatype=["str", "number"], interactive=True, elem_id="gen-strengths")  # fmt: skip
    with gr.Row():
        go = gr.Button("Generate", variant="primary", elem_id="gen-go", scale=3)
        cancel_button = gr.Button("Cancel", elem_id="gen-cancel", scale=1)
    status = gr.Markdown("The base model always runs; every variant starts from the same noise.",
                         elem_id="gen-status")  # fmt: skip
    return SimpleNamespace(adapters=adapters, refresh=refresh, strengths=strengths, go=go, cancel=cancel_button,
                           status=status)  # fmt: skip


def _results_area() -> SimpleNamespace:
    result = gr.State(None)

    @gr.render(inputs=result)
    def show_videos(current):
        if not current:
            return
        with gr.Row(elem_id="gen-videos"):  # one row: every variant side by side
            for v in current["record"]["variants"]:
                label = v["name"] if v["name"] == "base" else f"{v['name']} (strength {v.get('scale', 1.0):g})"
                gr.Video(str(Path(current["out_dir"]) / v["file"]), label=label, autoplay=True, loop=True,
                         interactive=False, elem_classes=["variant-video"])  # fmt: skip

    summary = gr.Dataframe(pd.DataFrame(columns=SUMMARY_COLUMNS), label="variants (seconds and adapter cards)",
                           interactive=False, elem_id="gen-summary")  # fmt: skip
    with gr.Row():
        files = gr.File(label="compare.mp4 (side by side) and compare.json", file_count="multiple",
                        interactive=False, elem_id="gen-files")  # fmt: skip
        record_json = gr.Code(language="json", label="compare.json", interactive=False, max_lines=18)
    return SimpleNamespace(result=result, summary=summary, files=files, record_json=record_json)


def build(studio: Studio, demo: gr.Blocks) -> dict[str, Any]:
    with gr.Tab("Generate & compare", id="generate") as tab:
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                cond, opts = _conditioning(studio), _settings()
            with gr.Column(scale=2):
                var = _variants(studio)
        out = _results_area()
    private = {"api_visibility": "private"}
    inputs = [cond.mode, cond.image, cond.video, opts.prompt, opts.negative, opts.seed, opts.steps, opts.guidance,
              opts.height, opts.width, opts.num_frames, opts.fps, opts.model, opts.revision, opts.guardrail,
              var.adapters, var.strengths]  # fmt: skip
    # concurrency_limit=None: a second request waits inside the client (and says so) instead of in Gradio's queue.
    var.go.click(_bound(generate, studio), inputs, [var.status, out.result, out.summary, out.files, out.record_json],
                 api_name="generate", concurrency_limit=None)  # fmt: skip
    var.cancel.click(_bound(cancel, studio), None, var.status, api_name="cancel_generation")
    var.adapters.change(sync_strengths, [var.adapters, var.strengths], var.strengths, **private)
    picked = [cond.image, cond.video, opts.prompt, cond.frame]
    choose = partial(pick, studio)
    cond.mode.change(switch_mode, cond.mode, [cond.image, cond.video, cond.frame], **private).then(
        choose, [cond.mode, cond.dataset, cond.clip, cond.frame], picked, **private
    )
    cond.dataset.change(partial(list_clips, studio), cond.dataset, cond.clip, **private)
    gr.on([cond.clip.change, cond.frame.release], choose, [cond.mode, cond.dataset, cond.clip, cond.frame], picked,
          **private)  # fmt: skip
    sizes = [opts.height, opts.width, opts.num_frames]
    opts.size.input(apply_size, opts.size, sizes, **private)
    gr.on([c.change for c in sizes], size_label, sizes, opts.size, show_progress="hidden", **private)
    refresh = partial(adapter_choices, studio)
    var.refresh.click(refresh, None, var.adapters, api_name="refresh_adapters")
    demo.load(refresh, None, var.adapters, **private)
    tab.select(refresh, None, var.adapters, **private)  # a run may have finished since the page loaded
    demo.load(lambda: gr.update(choices=studio.datasets.choices()), None, cond.dataset, **private).then(
        partial(list_clips, studio), cond.dataset, cond.clip, **private
    )
    return {"dataset": cond.dataset}
