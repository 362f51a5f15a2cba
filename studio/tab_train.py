"""Train tab: the config as a form (basics + Advanced, built from TrainConfig), then the runs and their live curves."""

from __future__ import annotations

import inspect
import json
from functools import partial
from types import SimpleNamespace
from typing import Any

import gradio as gr

from studio import tab_train_runs
from studio.folders import REFUSALS
from studio.memory_notes import training_markdown
from studio.named_outputs import NamedOutputs
from studio.train_form import (
    ADVANCED_FIELDS,
    BASIC_FIELDS,
    CUSTOM_SIZE,
    DEFAULT_PRESET,
    FORM_FIELDS,
    HELP,
    SIZE_FIELDS,
    SIZE_PRESETS,
    build_config,
    field_kind,
    preset_values,
    size_label,
    size_values,
    unique_run_name,
)
from studio.workspace import Studio
from trainer.spec.bounds import size_problem
from trainer.spec.config import DEFAULT_HUB_MODEL, TINY_MODEL, ConfigError, Problem, problem_fields


def _field(name: str, value: Any, studio: Studio) -> gr.components.Component:
    """One form widget for a config field: its label is the config key, its info the field's help."""
    info, kind = HELP[name]["help"], field_kind(name)
    common = {"label": name, "info": info, "value": value, "elem_id": f"cfg-{name}"}
    if name == "model":
        return gr.Dropdown([TINY_MODEL, DEFAULT_HUB_MODEL], allow_custom_value=True, **common)
    if name == "data":
        return gr.Dropdown(studio.datasets.choices(), allow_custom_value=True, **common)
    if kind == "choice":
        choices = HELP[name]["choices"]
        return (gr.Radio if len(choices) <= 3 else gr.Dropdown)(choices, **common)
    if kind == "bool":
        return gr.Checkbox(**common)
    if kind in ("int", "float"):
        return gr.Number(precision=0 if kind == "int" else None, **common)
    if kind == "pairs":
        return gr.Textbox(lines=2, max_lines=6, placeholder="first-frame.png | the prompt", **common)
    return gr.Textbox(max_lines=1, **common)


def _rows(names: tuple[str, ...], per_row: int = 3) -> list[tuple[str, ...]]:
    return [names[i : i + per_row] for i in range(0, len(names), per_row)]


def _problems_markdown(problems: list[Problem]) -> str:
    if not problems:
        return (
            "The config is valid: **Start** writes it as `runs/<name>/config.json` and launches the trainer "
            "(while a run trains, it queues the new run: it starts when the runs before it end)."
        )
    return "**Fix before starting:**\n" + "\n".join(f"- `{p.field}`: {p.message}" for p in problems)


# --- handlers (module level, `studio` bound with functools.partial) ----------------------------------------
def show_config(*values) -> dict[str, Any]:
    form = build_config(dict(zip(FORM_FIELDS, values)))
    return {
        "preview": json.dumps(form.raw, indent=2),
        "problems": _problems_markdown(form.problems),
        "estimate": training_markdown(form.config),
    }


def _fill(values: dict[str, Any]) -> dict[str, Any]:
    """The form's fields and its size choice (FORM_OUTPUTS), from every field's value."""
    return {**{n: values[n] for n in FORM_FIELDS}, "size": size_label(*(values[f] for f in SIZE_FIELDS))}


def load_preset(studio: Studio, name: str) -> dict[str, Any]:
    try:
        values = studio.sources.preset(name)
    except ValueError as exc:  # a damaged preset file, or a name that is not a preset
        gr.Warning(studio.jobs.paths.redact(str(exc)))
        return {}
    values["name"] = unique_run_name(values["name"], set(studio.monitor.run_names()))
    return _fill(values)


def clone_run(studio: Studio, name: str | None) -> dict[str, Any]:
    """The form filled with run `name`'s config under a fresh name: Start then makes a new run beside it."""
    if not name:
        gr.Warning("Pick a run to clone first.")
        return {}
    try:
        values = studio.sources.run(name, set(studio.monitor.run_names()))
    except REFUSALS as exc:
        gr.Warning(studio.jobs.paths.redact(str(exc)))
        return {}
    gr.Info(f"The form holds run {name!r}'s config as {values['name']!r}; change what you like and start it.")
    return _fill(values)


def save_preset(studio: Studio, preset: str, *values) -> dict[str, Any]:
    """Save the form as workspace preset `preset` (presets/<preset>.json); every problem of the form at once.
    Saving over a workspace preset of that name replaces it, and the message says so."""
    replaced = (preset or "").strip() in studio.sources.preset_names()
    try:
        studio.sources.save_preset(preset, dict(zip(FORM_FIELDS, values)))
    except ConfigError as exc:
        gr.Warning(f"Fix {', '.join(problem_fields(exc.problems))} before saving the preset.")
        return {"problems": _problems_markdown(exc.problems)}
    except REFUSALS as exc:
        gr.Warning(str(exc))
        return {}
    gr.Info(
        f"Preset {preset.strip()!r} "
        + (
            "replaced: it now holds this form (the earlier one is gone)."
            if replaced
            else "saved in the workspace's presets/."
        )
    )
    return {"preset": gr.update(choices=studio.sources.preset_names(), value=preset.strip())}


def start_run(studio: Studio, *values) -> dict[str, Any]:
    """Validate the form with the trainer's validator, write runs/<name>/config.json and launch the trainer."""
    form = build_config(dict(zip(FORM_FIELDS, values)))
    if form.problems:
        gr.Warning(f"Fix {', '.join(form.fields_with_problems)} before starting (listed under the config).")
        return {"problems": _problems_markdown(form.problems)}
    try:  # starts now when nothing trains (on a GPU: and nothing generates), else queues it
        run = studio.queue.submit(form.config)
    except ConfigError as exc:
        gr.Warning(f"Fix {', '.join(problem_fields(exc.problems))} before starting.")
        return {"problems": _problems_markdown(exc.problems)}
    except REFUSALS as exc:
        message = studio.jobs.paths.redact(str(exc))
        gr.Warning(message)
        return {"problems": f"**Not started:** {message}"}
    if run.position and studio.jobs.current() is None:  # nothing trains: a generation or evaluation has the GPU
        gr.Info(
            f"Run {run.name!r} is queued ({studio.queue.note(run.name)}); it starts when the generation or "
            "evaluation using the GPU ends."
        )
    elif run.position:
        gr.Info(f"Run {run.name!r} is queued ({studio.queue.note(run.name)}); it starts when the runs before it end.")
    else:
        gr.Info(f"Run {run.name!r} started; its curve appears after the first step.")
    names = studio.monitor.run_names()
    return {"run": gr.update(choices=names, value=run.name), "name": unique_run_name(run.name, set(names))}


def on_load(studio: Studio) -> dict[str, Any]:
    """The runs list (run), the presets (preset), and the form: the config of the run the page shows (under a fresh name), else the default."""
    names, run = studio.monitor.run_names(), studio.monitor.default_run()
    try:
        values = studio.sources.run(run, set(names)) if run else None
    except REFUSALS:  # a damaged config.json: the run view names the problem; the form starts from the default
        values = None
    if values is None:
        values = preset_values(DEFAULT_PRESET)
        values["name"] = unique_run_name(values["name"], set(names))
    return {
        **_fill(values),
        "run": gr.update(choices=names, value=run),
        "data": gr.update(choices=studio.datasets.choices(), value=values["data"]),
        "preset": gr.update(choices=studio.sources.preset_names()),
    }


# --- layout and wiring ------------------------------------------------------------------------------------
def _size_choices() -> list[str]:
    # Only sizes a run may train at anywhere (the 2B model's own 704x1280 is for generation).
    return [label for label, size in SIZE_PRESETS.items() if not size_problem(*size)] + [CUSTOM_SIZE]


def _form(studio: Studio) -> SimpleNamespace:
    defaults = preset_values(DEFAULT_PRESET)
    fields: dict[str, gr.components.Component] = {}
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            with gr.Row():
                preset = gr.Dropdown(
                    studio.sources.preset_names(),
                    value=DEFAULT_PRESET,
                    label="preset",
                    scale=1,
                    elem_id="train-preset",
                    info="Loads every field: the built-in presets, then the ones saved in this workspace.",
                )
                size = gr.Dropdown(
                    _size_choices(),
                    label="resolution and frames",
                    scale=1,
                    value=size_label(*(defaults[f] for f in SIZE_FIELDS)),
                    info="Sets height, width and num_frames.",
                )
            for row in _rows(tuple(n for n in BASIC_FIELDS if n not in SIZE_FIELDS)) + [SIZE_FIELDS]:
                with gr.Row():
                    for name in row:
                        fields[name] = _field(name, defaults[name], studio)
            with gr.Accordion("Advanced", open=False):
                for row in _rows(ADVANCED_FIELDS):
                    with gr.Row():
                        for name in row:
                            fields[name] = _field(name, defaults[name], studio)
        with gr.Column(scale=2):
            preview = gr.Code(language="json", label="config.json (what Start writes)", interactive=False, max_lines=24)
            problems = gr.Markdown(elem_id="train-problems")
            estimate = gr.Markdown(elem_id="train-memory")
            start = gr.Button(
                "Start training", variant="primary", elem_id="train-start", visible=not studio.workspace.read_only
            )
            with gr.Row(equal_height=True, visible=not studio.workspace.read_only):
                preset_name = gr.Textbox(
                    label="save the form as a preset",
                    placeholder="preset name",
                    scale=2,
                    max_lines=1,
                    elem_id="train-preset-name",
                )
                save = gr.Button("Save preset", size="md", scale=1, elem_id="train-preset-save")
    return SimpleNamespace(
        fields=fields,
        preset=preset,
        size=size,
        preview=preview,
        problems=problems,
        estimate=estimate,
        start=start,
        preset_name=preset_name,
        save=save,
    )


def build(studio: Studio, demo: gr.Blocks) -> dict[str, Any]:
    with gr.Tab("Train", id="train"):
        form, runs = _form(studio), tab_train_runs.layout(studio)
    fields, private = form.fields, {"api_visibility": "private"}
    inputs, size_fields = [fields[n] for n in FORM_FIELDS], [fields[f] for f in SIZE_FIELDS]
    configured = NamedOutputs(preview=form.preview, problems=form.problems, estimate=form.estimate)
    gr.on(
        [c.change for c in inputs],
        configured.wrap(show_config),
        inputs,
        configured.components,
        trigger_mode="always_last",
        show_progress="hidden",
        **private,
    )
    in_order = {n: fields[n] for n in FORM_FIELDS}  # `fields` is in layout order; API callers get FORM_FIELDS order
    filled = NamedOutputs(**in_order, size=form.size)
    form.preset.input(filled.wrap(partial(load_preset, studio)), form.preset, filled.components, **private)
    sized = NamedOutputs(**{f: fields[f] for f in SIZE_FIELDS})
    form.size.input(sized.wrap(size_values), form.size, sized.components, **private)
    gr.on([c.change for c in size_fields], size_label, size_fields, form.size, show_progress="hidden", **private)
    started = NamedOutputs(run=runs.run, problems=form.problems, name=fields["name"])
    start = partial(start_run, studio)
    # One named parameter per config field, so API callers pass them by name (start_training(rank=4, ...)).
    start.__signature__ = inspect.Signature(
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in FORM_FIELDS]
    )
    form.start.click(started.wrap(start), inputs, started.components, api_name="start_training")
    tab_train_runs.wire(studio, runs)
    runs.clone.click(filled.wrap(partial(clone_run, studio)), runs.run, filled.components, api_name="clone_run")
    saved = NamedOutputs(preset=form.preset, problems=form.problems)
    form.save.click(
        saved.wrap(partial(save_preset, studio)), [form.preset_name, *inputs], saved.components, api_name="save_preset"
    )
    tab_train_runs.wire_tick(studio, runs)
    loaded = NamedOutputs(run=runs.run, **in_order, size=form.size, preset=form.preset)
    demo.load(loaded.wrap(partial(on_load, studio)), None, loaded.components, **private)
    demo.load(configured.wrap(show_config), inputs, configured.components, **private)
    return {"fields": fields, "run": runs.run}
