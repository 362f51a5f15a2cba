"""Generate & compare tab: the base model and any adapters from the same first frame(s), prompt and noise."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr
import pandas as pd

from studio import ground_truth, tab_evaluate
from studio import tab_generate_conditioning as conditioning
from studio import tab_generate_variants as variants
from studio.folders import REFUSALS
from studio.generation_client import base_model_mismatch, settings_problems
from studio.memory_notes import ESTIMATED, generation_markdown
from studio.named_number import named_number
from studio.named_outputs import NamedOutputs, bind
from studio.previews import ENLARGED_DIR, enlarged
from studio.synced_playback import synced_playback
from studio.tab_generate_conditioning import CLIP, CONDITIONAL_LATENT_FRAMES, FRAME
from studio.tab_generate_variants import strengths, user_error
from studio.train_form import CUSTOM_SIZE, SIZE_FIELDS, SIZE_PRESETS, size_label, size_values
from studio.workspace import Studio
from trainer.spec.bounds import MAX_TEXT, generation_size_problem, long_text_problem
from trainer.spec.config import DEFAULT_HUB_MODEL, Problem
from trainer.spec.embedded import TINY_MODEL
from trainer.spec.generate_settings import (
    PRESET_HELP,
    PRESETS,
    SETTING_NAMES,
    field_help,
    preset_for,
    preset_values,
)
from trainer.spec.machine import cuda_visible
from trainer.spec.run_folder import CARD_SUMMARY_KEYS, COMPARE_RECORD_FILE, COMPARE_VIDEO_FILE, card_summary

SUMMARY_COLUMNS = ["variant", "strength", "seconds", *CARD_SUMMARY_KEYS]
SETTINGS = field_help()
START_PRESET = preset_for(TINY_MODEL)  # the studio starts on the embedded tiny model
TUNED = ("steps", "guidance", "height", "width", "num_frames", "fps")  # what a preset sets
# The Generate button's inputs and outputs, by name: the handler gets and yields dicts with these keys, and
# the API endpoint's parameters carry these names.
INPUTS = ("mode", "image", "video", "prompt", *SETTING_NAMES, "adapters", "strengths")
OUTPUTS = ("status", "result", "summary", "files", "record_json")
API_OUTPUTS = tuple(n for n in OUTPUTS if n != "result")  # a gr.State is not part of the API's answer


def summary_table(record: dict) -> pd.DataFrame:
    """compare.json's per-variant seconds with each adapter's card, one row per variant."""
    rows = []
    for v in record.get("variants", []):
        card = v.get("card") or {}
        rows.append(
            {
                "variant": v["name"],
                "strength": v.get("scale"),
                "seconds": v.get("seconds"),
                **card_summary(card),
                "base_model": card.get("base_model") or record.get("model"),
            }
        )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


# --- handlers (module level, `studio` bound with named_outputs.bind) --------------------------------------
def _bounds(studio: Studio, settings: dict[str, Any], mode: str, prompt: str) -> None:
    """The request's settings (GenerateSettings' checks) and prompt, a model this studio may load (and the
    guardrail it keeps), and a size within this machine's budget (trainer.spec.bounds)."""
    problems = settings_problems(settings, CONDITIONAL_LATENT_FRAMES[mode])
    long = long_text_problem(prompt)
    problems += [Problem("prompt", long)] if long else []
    if problems:
        raise user_error("Fix the settings: " + "; ".join(map(str, problems)) + ".")
    try:
        studio.datasets.paths.model(settings["model"], settings["revision"])
        studio.workspace.access.check_guardrail(settings["model"], settings["guardrail"])
    except REFUSALS as exc:
        raise user_error(str(exc)) from None
    problem = generation_size_problem(settings["height"], settings["width"], settings["num_frames"], cuda_visible())
    if problem:
        raise user_error(problem[0].upper() + problem[1:] + ".")


def generate(studio: Studio, session: gr.Request, progress=gr.Progress(), **form):
    """Stream the worker's per-step progress, then the videos, the summary table and compare.json. `form` holds
    INPUTS by name; each update is a dict of OUTPUTS by name."""
    mode = form["mode"]
    condition = form["image"] if mode == FRAME else form["video"]
    if not condition:
        raise user_error(f"Give a {mode.split(' (')[0]}: upload one or pick a dataset clip.")
    settings = {name: form[name] for name in SETTING_NAMES} | {"model": form["model"] or TINY_MODEL}
    _bounds(studio, settings, mode, form["prompt"] or "")
    picked = list(dict.fromkeys(form["adapters"] or []))
    chosen = {a.name: a for a in studio.adapters.variants() if a.name in picked}
    for name in (n for n in picked if n not in chosen):  # gone since the page listed it (a pruned checkpoint)
        try:
            studio.adapters.variant(name)  # raises, saying why
        except REFUSALS as exc:
            raise user_error(str(exc)) from None
    why = base_model_mismatch(settings["model"], [(n, a.base_model) for n, a in chosen.items()])
    if why:
        raise user_error(why)
    scale = strengths(form["strengths"])
    request = settings | {
        "prompt": form["prompt"] or "",
        "image": condition if mode == FRAME else "",
        "video": condition if mode == CLIP else "",
        "adapters": [{"path": str(a.path), "scale": scale.get(n, 1.0)} for n, a in chosen.items()],
    }
    variants, per_variant = ["base", *chosen], settings["steps"]
    try:
        for event in studio.generation.generate(request, owner=_owner(session)):
            if event["event"] == "queued":
                ahead = event["position"]
                yield {
                    "status": f"Queued: {ahead} generation{'s' if ahead > 1 else ''} ahead of this one "
                    f"(place {ahead + 1} in line); it starts when they finish."
                }
            elif event["event"] == "starting":
                yield {"status": "Starting the generation worker and loading the model…"}
            elif event["event"] == "progress":
                index = variants.index(event["variant"]) if event["variant"] in variants else 0
                progress(
                    (index * per_variant + event["step"], len(variants) * per_variant),
                    desc=event["variant"],
                    unit="steps",
                )
                yield {
                    "status": f"Rendering **{event['variant']}** (variant {index + 1} of {len(variants)}): "
                    f"step {event['step']}/{event['total']}"
                }
            elif event["event"] == "done":
                out_dir, picks = Path(event["out_dir"]), studio.generation.out_root / conditioning.INPUTS_DIR
                truth = ground_truth.real_clip(studio.datasets, picks, condition, event["record"], out_dir)
                shown = _results(event["record"], out_dir, studio.datasets.paths.redact)
                yield shown | ({"result": shown["result"] | {"truth": truth}} if truth else {})
    except REFUSALS as exc:
        raise user_error(studio.datasets.paths.redact(str(exc))) from None


def _owner(request: gr.Request | None) -> str | None:
    # The browser session that sent a generation is the one that may cancel it.
    return getattr(request, "session_hash", None) if request is not None else None


def cancel(studio: Studio, request: gr.Request):
    if studio.generation.cancel(_owner(request) or ""):
        return "Cancelling: the generation stops and the worker restarts for the next request."
    return "Nothing to cancel: no generation of this page is running or queued."


def _results(record: dict, out_dir: Path, redact) -> dict[str, Any]:
    seconds = sum(v.get("seconds", 0) for v in record["variants"])
    # compare.json as text, not gr.JSON: its adapter entries hold a "path", which gradio_client takes for a file.
    shown = redact(json.dumps(record, indent=2))
    # The file handed out is the shown text: its first frame's and adapters' paths hold no server folder.
    (out_dir / COMPARE_RECORD_FILE).write_text(shown + "\n")
    return {
        "status": f"Done: {len(record['variants'])} variants in {seconds:.1f} s, saved in "
        f"`generations/{out_dir.name}`.",
        "result": {"record": record, "out_dir": str(out_dir)},
        "summary": summary_table(record),
        "files": [str(out_dir / COMPARE_VIDEO_FILE), str(out_dir / COMPARE_RECORD_FILE)],
        "record_json": shown,
    }


def apply_preset(name: str) -> dict[str, Any]:
    """The settings preset `name` tunes (TUNED), by name."""
    values = preset_values(name)
    return {n: values[n] for n in TUNED}


# --- layout and wiring ------------------------------------------------------------------------------------
def _setting(name: str, value: Any, **kw: Any):
    """The input of one GenerateSettings field: its name, help, bounds and type from the field's metadata."""
    meta = SETTINGS[name]
    common = {"label": name, "info": meta["help"], "elem_id": f"gen-{name}", **kw}
    if isinstance(meta["default"], bool):
        return gr.Checkbox(value, **common)
    if meta["choices"]:
        return gr.Dropdown(list(meta["choices"]), value=value, **common)
    if isinstance(meta["default"], str):
        return gr.Textbox(value, **common)
    low, high = meta["bounds"]
    precision = 0 if isinstance(meta["default"], int) else None
    return named_number(value, precision=precision, minimum=low, maximum=high, **common)


def _guardrail(studio: Studio, value: bool):
    """The guardrail checkbox; on a public studio locked on, saying why (studio.access)."""
    locked = studio.workspace.access.guardrail_note()
    if locked:
        return _setting("guardrail", True, interactive=False, info=locked)
    return _setting("guardrail", value)


def _settings(studio: Studio) -> dict[str, Any]:
    start = preset_values(START_PRESET)
    prompt = gr.Textbox(label="prompt", lines=2, max_length=MAX_TEXT, elem_id="gen-prompt")
    ui = {"prompt": prompt, "negative_prompt": _setting("negative_prompt", start["negative_prompt"], lines=1)}
    with gr.Row():
        ui["preset"] = gr.Dropdown(
            list(PRESETS),
            value=START_PRESET,
            label="preset",
            scale=1,
            info=PRESET_HELP[START_PRESET],
            elem_id="gen-preset",
        )
        for name in ("seed", "steps", "guidance", "fps"):
            ui[name] = _setting(name, start[name], scale=1)
    with gr.Row():
        ui["size"] = gr.Dropdown(
            [*(k for k, v in SIZE_PRESETS.items() if v[2] >= 9), CUSTOM_SIZE],
            value=size_label(start["height"], start["width"], start["num_frames"]),
            label="size and frames",
            min_width=320,  # "704x1280, 93 frames (model default)" shown whole; the numbers share the rest
        )
        for name in ("height", "width", "num_frames"):
            ui[name] = _setting(name, start[name], scale=1, min_width=80)
    with gr.Accordion("Model", open=False):
        with gr.Row():
            ui["model"] = gr.Dropdown(
                [TINY_MODEL, DEFAULT_HUB_MODEL],
                value=start["model"],
                label="model",
                allow_custom_value=True,
                info=studio.workspace.access.offer_note("model") or SETTINGS["model"]["help"],
            )
            ui["revision"] = _setting("revision", start["revision"])
            ui["guardrail"] = _guardrail(studio, start["guardrail"])
            ui["precision"] = _setting("precision", start["precision"])
            ui["memory"] = _setting("memory", start["memory"])
        ui["memory_estimate"] = gr.Markdown(elem_id="gen-memory-estimate")
    return ui


def _results_area(serve: Path) -> SimpleNamespace:
    """The videos side by side (small ones enlarged into `serve`, see previews.enlarged), scores and files."""
    result = gr.State(None)

    @gr.render(inputs=result)
    def show_videos(current):
        if not current:
            return
        columns = [
            (v["file"], v["name"] if v["name"] == "base" else f"{v['name']} (strength {v.get('scale', 1.0):g})", None)
            for v in current["record"]["variants"]
        ]
        if current.get("truth"):  # the dataset clip the first frame came from: what really happened
            columns.append((current["truth"]["file"], current["truth"]["label"], "gen-real-clip"))
        with gr.Row(elem_id="gen-videos"):  # one row: every variant side by side
            for file, label, elem_id in columns:
                gr.Video(
                    str(enlarged(Path(current["out_dir"]) / file, serve)),
                    label=label,
                    autoplay=True,
                    loop=True,
                    interactive=False,
                    elem_classes=["variant-video"],
                    elem_id=elem_id,
                )
        synced_playback(current["record"], "#gen-videos video")  # one play/pause/scrub for all of them

    scores = tab_evaluate.table()
    summary = gr.Dataframe(
        pd.DataFrame(columns=SUMMARY_COLUMNS),
        label="variants (seconds and adapter cards)",
        interactive=False,
        elem_id="gen-summary",
    )
    with gr.Row():
        files = gr.File(
            label="compare.mp4 (side by side) and compare.json",
            file_count="multiple",
            interactive=False,
            elem_id="gen-files",
        )
        record_json = gr.Code(language="json", label="compare.json", interactive=False, max_lines=18)
    return SimpleNamespace(result=result, scores=scores, summary=summary, files=files, record_json=record_json)


def build(studio: Studio, demo: gr.Blocks) -> dict[str, Any]:
    with gr.Tab("Generate & compare", id="generate") as tab:
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                cond, opts = conditioning.layout(studio), _settings(studio)
            with gr.Column(scale=2):
                var = variants.layout(studio)
                evaluation = tab_evaluate.controls(studio)
        out = _results_area(studio.workspace.gradio_temp / ENLARGED_DIR)
    ui = {**vars(cond), **opts, **vars(var), **vars(out), **vars(evaluation)}
    private = {"api_visibility": "private"}
    outputs = NamedOutputs(**{name: ui[name] for name in OUTPUTS})
    # concurrency_limit=None: a second request waits inside the client (and says so) instead of in Gradio's queue.
    var.go.click(
        outputs.wrap(bind(generate, studio)),
        inputs_kwargs={name: ui[name] for name in INPUTS},
        outputs=outputs.components,
        api_name="generate",
        concurrency_limit=None,
    )
    var.cancel.click(bind(cancel, studio), None, var.status, api_name="cancel_generation")
    conditioning.wire(studio, cond, ui)
    sized = NamedOutputs(**{n: ui[n] for n in SIZE_FIELDS})
    sizes = sized.components
    ui["size"].input(sized.wrap(size_values), ui["size"], sizes, **private)
    gr.on([c.change for c in sizes], size_label, sizes, ui["size"], show_progress="hidden", **private)
    estimated = [ui[n] for n in ESTIMATED]
    gr.on([*(c.change for c in estimated), demo.load], generation_markdown, estimated, ui["memory_estimate"], **private)
    tuned = NamedOutputs(**{n: ui[n] for n in TUNED})
    ui["preset"].input(tuned.wrap(apply_preset), ui["preset"], tuned.components, **private).then(
        lambda name: gr.update(info=PRESET_HELP[name]), ui["preset"], ui["preset"], **private
    )
    page = tab_evaluate.Page(studio, owner=_owner, strengths=strengths, results=_results, user_error=user_error)
    tab_evaluate.wire(page, demo, ui, bind)
    variants.wire(studio, var, demo, tab)
    demo.load(lambda: gr.update(choices=studio.datasets.choices()), None, cond.dataset, **private).then(
        partial(conditioning.list_clips, studio), cond.dataset, cond.clip, **private
    )
    return {"dataset": cond.dataset}
