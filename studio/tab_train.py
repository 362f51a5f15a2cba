"""Train tab: the config as a form (basics + Advanced, built from TrainConfig), then the runs and their live curves."""

from __future__ import annotations

import html
import inspect
import json
from functools import partial
from types import SimpleNamespace
from typing import Any

import gradio as gr
import pandas as pd

from studio.folders import REFUSALS
from studio.jobs import NoCheckpoint
from studio.metrics_tail import CURVE_COLUMNS, RAW, SMOOTHED, loss_curve
from studio.named_outputs import NamedOutputs
from studio.run_samples import curve_marks, sample_strip, shown_steps
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
    unique_run_name,
)
from studio.workspace import Studio
from trainer.bounds import size_problem
from trainer.config import DEFAULT_HUB_MODEL, TINY_MODEL, ConfigError, Problem, problem_fields

TICK_SECONDS = 1.0
NO_RUN = "No run yet: press **Start training**."
LOG_LINES = 14
EMPTY_CURVE = pd.DataFrame({c: pd.Series(dtype=int if c == "step" else float) for c in CURVE_COLUMNS})
# raw points faint, the trend strong; the steps sampled and checkpointed marked on the trend
LOSS_COLOURS = {RAW: "#c7cedb", SMOOTHED: "#2563eb", "samples": "#f59e0b", "checkpoints": "#10b981"}


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


def _log_html(text: str) -> str:
    return f'<pre class="run-log">{html.escape(text) or "(no output yet)"}</pre>'


def _problems_markdown(problems: list[Problem]) -> str:
    if not problems:
        return (
            "The config is valid: **Start** writes it as `runs/<name>/config.json` and launches the trainer "
            "(while a run trains, it queues the new run: it starts when the runs before it end)."
        )
    return "**Fix before starting:**\n" + "\n".join(f"- `{p.field}`: {p.message}" for p in problems)


# --- handlers (module level, `studio` bound with functools.partial) ----------------------------------------
def show_config(*values):
    form = build_config(dict(zip(FORM_FIELDS, values)))
    return json.dumps(form.raw, indent=2), _problems_markdown(form.problems)


def _fill(values: dict[str, Any]) -> list[Any]:
    """The form's fields and its size choice, from every field's value."""
    return [values[n] for n in FORM_FIELDS] + [size_label(*(values[f] for f in SIZE_FIELDS))]


def load_preset(studio: Studio, name: str):
    try:
        values = studio.sources.preset(name)
    except ValueError as exc:  # a damaged preset file, or a name that is not a preset
        gr.Warning(studio.jobs.paths.redact(str(exc)))
        return [gr.skip()] * (len(FORM_FIELDS) + 1)
    values["name"] = unique_run_name(values["name"], set(studio.monitor.run_names()))
    return _fill(values)


def clone_run(studio: Studio, name: str | None):
    """The form filled with run `name`'s config under a fresh name: Start then makes a new run beside it."""
    if not name:
        gr.Warning("Pick a run to clone first.")
        return [gr.skip()] * (len(FORM_FIELDS) + 1)
    try:
        values = studio.sources.run(name, set(studio.monitor.run_names()))
    except REFUSALS as exc:
        gr.Warning(studio.jobs.paths.redact(str(exc)))
        return [gr.skip()] * (len(FORM_FIELDS) + 1)
    gr.Info(f"The form holds run {name!r}'s config as {values['name']!r}; change what you like and start it.")
    return _fill(values)


def save_preset(studio: Studio, preset: str, *values):
    """Save the form as workspace preset `preset` (presets/<preset>.json); every problem of the form at once.
    Saving over a workspace preset of that name replaces it, and the message says so."""
    replaced = (preset or "").strip() in studio.sources.preset_names()
    try:
        studio.sources.save_preset(preset, dict(zip(FORM_FIELDS, values)))
    except ConfigError as exc:
        gr.Warning(f"Fix {', '.join(problem_fields(exc.problems))} before saving the preset.")
        return gr.skip(), _problems_markdown(exc.problems)
    except REFUSALS as exc:
        gr.Warning(str(exc))
        return gr.skip(), gr.skip()
    gr.Info(
        f"Preset {preset.strip()!r} "
        + (
            "replaced: it now holds this form (the earlier one is gone)."
            if replaced
            else "saved in the workspace's presets/."
        )
    )
    return gr.update(choices=studio.sources.preset_names(), value=preset.strip()), gr.skip()


def apply_size(label: str):
    return list(SIZE_PRESETS[label]) if label in SIZE_PRESETS else [gr.skip()] * 3


def start_run(studio: Studio, *values):
    """Validate the form with the trainer's validator, write runs/<name>/config.json and launch the trainer."""
    form = build_config(dict(zip(FORM_FIELDS, values)))
    if form.problems:
        gr.Warning(f"Fix {', '.join(form.fields_with_problems)} before starting (listed under the config).")
        return gr.skip(), _problems_markdown(form.problems), gr.skip()
    try:  # starts now when nothing trains (on a GPU: and nothing generates), else queues it
        run = studio.queue.submit(form.config)
    except ConfigError as exc:
        gr.Warning(f"Fix {', '.join(problem_fields(exc.problems))} before starting.")
        return gr.skip(), _problems_markdown(exc.problems), gr.skip()
    except REFUSALS as exc:
        message = studio.jobs.paths.redact(str(exc))
        gr.Warning(message)
        return gr.skip(), f"**Not started:** {message}", gr.skip()
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
    return gr.update(choices=names, value=run.name), gr.skip(), unique_run_name(run.name, set(names))


def run_command(studio: Studio, action: str, name: str, typed: str = ""):
    """Stop (graceful), resume (from the latest checkpoint), start over, kill or delete the chosen run.

    Resume of a run without a checkpoint does not silently restart it: the refusal shows the Start over button."""
    if not name:
        gr.Warning("Pick a run first.")
        return gr.skip(), gr.skip()
    start_over = gr.update(visible=False)
    try:
        if action == "stop":
            studio.jobs.stop(name)
            gr.Info(f"Stopping {name!r}: it finishes the step, then saves a checkpoint and the adapter.")
        elif action in ("resume", "start_over"):
            studio.queue.resume(name, start_over=action == "start_over")
            gr.Info(
                f"Run {name!r} "
                + ("starts over from step 0." if action == "start_over" else "resumes from its latest checkpoint.")
            )
        elif action == "cancel":
            studio.queue.cancel(name)
            gr.Info(f"Run {name!r} left the queue; its config stays: clone it to queue it again.")
        elif action == "delete":
            studio.jobs.delete(name, typed)
            gr.Info(f"Run {name!r} deleted.")
            names = studio.monitor.run_names()
            return gr.update(choices=names, value=names[0] if names else None), start_over
        else:
            studio.jobs.kill(name)
            gr.Info(f"Run {name!r} was killed; resume it from its last checkpoint.")
    except NoCheckpoint as exc:
        gr.Warning(str(exc))
        start_over = gr.update(visible=True)
    except ConfigError as exc:
        gr.Warning(f"Run {name!r}: " + "; ".join(map(str, exc.problems)))
    except REFUSALS as exc:
        gr.Warning(studio.jobs.paths.redact(str(exc)))
    return gr.update(choices=studio.monitor.run_names(), value=name), start_over


def tick(studio: Studio, name: str, last) -> dict[str, Any]:
    """The run's headline, error, curves, log and numbers (TICK_OUTPUTS); curves and log only when they changed."""
    view = studio.monitor.view(name, LOG_LINES)
    if view is None:
        if last == NO_RUN:  # nothing to redraw: an unchanged plot still re-renders in the browser
            return {"headline": NO_RUN, "error": "", "numbers": {}}
        return {
            "headline": NO_RUN,
            "error": "",
            "loss_plot": None,
            "lr_plot": EMPTY_CURVE,
            "log": "",
            "numbers": {},
            "grad_plot": EMPTY_CURVE,
            "samples": [],
            "seen": NO_RUN,
        }
    err = ""
    if view.numbers["error"]:
        first = view.numbers["error"].splitlines()[0]
        err = f"**{view.state.capitalize()}:** {first}" + (" (the end of its log is below)" if view.log else "")
    if view.numbers["problems"]:  # damaged files of the run: named, and the view still shows the rest
        err += "\n\n**Could not read:**\n" + "\n".join(f"- {p}" for p in view.numbers["problems"][:5])
    note = studio.queue.note(name)
    shown = {"headline": view.headline + (f" · {note}" if note else ""), "error": err, "numbers": view.numbers}
    if view.signature == last:
        return shown
    curve = loss_curve(view.frame)
    strip = sample_strip(view.run_dir, view.events, studio.workspace.gradio_temp / "samples")
    columns = max(1, len(shown_steps(view.events)))  # a row per sample prompt, its steps side by side
    loss_plot = pd.concat([curve, curve_marks(curve, view.events)], ignore_index=True) if len(curve) else None
    return {
        **shown,
        "loss_plot": loss_plot,
        "lr_plot": view.frame,
        "log": _log_html(view.log),
        "grad_plot": view.frame,
        "samples": gr.update(value=strip, columns=columns),
        "seen": view.signature,
    }


def refresh_runs(studio: Studio, current: str | None):
    names = studio.monitor.run_names()
    return gr.update(choices=names, value=current if current in names else (names[0] if names else None))


def on_load(studio: Studio):
    """The runs list, and the form: the config of the run the page shows (under a fresh name), else the default."""
    names, run = studio.monitor.run_names(), studio.monitor.default_run()
    try:
        values = studio.sources.run(run, set(names)) if run else None
    except REFUSALS:  # a damaged config.json: the run view names the problem; the form starts from the default
        values = None
    if values is None:
        values = preset_values(DEFAULT_PRESET)
        values["name"] = unique_run_name(values["name"], set(names))
    filled = _fill(values)
    filled[FORM_FIELDS.index("data")] = gr.update(choices=studio.datasets.choices(), value=values["data"])
    return [gr.update(choices=names, value=run), *filled, gr.update(choices=studio.sources.preset_names())]


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
        start=start,
        preset_name=preset_name,
        save=save,
    )


def _runs(studio: Studio) -> SimpleNamespace:
    gr.Markdown("### Runs")
    writable = not studio.workspace.read_only
    with gr.Row(equal_height=False):
        run = gr.Dropdown(
            [],
            label="run",
            scale=2,
            elem_id="train-run",
            allow_custom_value=True,
            info="Runs are read from the workspace; a training one is re-attached.",
        )
        with gr.Column(scale=3):
            with gr.Row(visible=writable):
                stop = gr.Button("Stop", variant="stop", size="md", elem_id="train-stop")
                resume = gr.Button("Resume", size="md", elem_id="train-resume")
                start_over = gr.Button("Start over from step 0", size="md", visible=False, elem_id="train-start-over")
                kill = gr.Button("Kill", size="md")
                cancel = gr.Button("Cancel queued run", size="md", elem_id="train-cancel")
            with gr.Row():
                clone = gr.Button("Clone into the form", size="md", elem_id="train-clone")
                refresh = gr.Button("Refresh list", size="md")
            gr.Markdown(
                "Stop finishes the step and saves a checkpoint and the adapter; Resume continues a "
                "stopped or failed run from its latest checkpoint; Kill ends it at once. Cancel takes a "
                "queued run out of the queue (its config stays); Clone fills the form with the run's "
                "config under a new name.",
                visible=writable,
            )
            with gr.Accordion("Delete this run", open=False, visible=writable):
                confirm = gr.Textbox(
                    label="confirm deletion",
                    placeholder="type the run's name",
                    info="Deletes the run folder: checkpoints, adapter and logs.",
                )
                delete = gr.Button("Delete run", variant="stop")
    headline = gr.Markdown(NO_RUN, elem_id="train-headline")
    error = gr.Markdown(elem_id="train-error")
    with gr.Row():
        # None, not an empty frame, until there is a curve: a colour-split plot first drawn from an empty frame
        # stays blank after later updates (gradio 6.31, seen in the browser).
        loss_plot = gr.LinePlot(
            None,
            x="step",
            y="loss",
            color="series",
            color_map=LOSS_COLOURS,
            label="loss",
            height=260,
            x_axis_format="d",
            elem_id="loss-plot",
        )
        lr_plot = gr.LinePlot(
            EMPTY_CURVE,
            x="step",
            y="lr",
            label="learning rate",
            height=260,
            x_axis_format="d",
            y_axis_format=".1e",
            elem_id="lr-plot",
        )
        grad_plot = gr.LinePlot(
            EMPTY_CURVE,
            x="step",
            y="grad_norm",
            label="gradient norm (before clipping)",
            height=260,
            x_axis_format="d",
            elem_id="grad-norm-plot",
        )
    samples = gr.Gallery(
        label="samples (sample_every): a row per prompt, the base at step 0 next to the latest steps",
        columns=1,
        object_fit="contain",
        elem_id="train-samples",
    )
    gr.Markdown("**Log** (the last lines of the run's process.log)")
    # Plain <pre>, sized to its lines: a scrolling box would keep showing the oldest line.
    log = gr.HTML(elem_id="train-log")
    with gr.Accordion("Progress as JSON", open=False):
        numbers = gr.JSON(label="progress", elem_id="train-numbers")
    return SimpleNamespace(
        run=run,
        stop=stop,
        resume=resume,
        start_over=start_over,
        kill=kill,
        refresh=refresh,
        cancel=cancel,
        clone=clone,
        confirm=confirm,
        delete=delete,
        headline=headline,
        error=error,
        loss_plot=loss_plot,
        lr_plot=lr_plot,
        grad_plot=grad_plot,
        log=log,
        numbers=numbers,
        samples=samples,
    )


# The outputs of the train_tick endpoint, by name, as an API caller receives them (in this order). The page also
# keeps "seen" (what it last drew) in a State, which is never sent to API callers.
TICK_OUTPUTS = ("headline", "error", "loss_plot", "lr_plot", "log", "numbers", "grad_plot", "samples")


def tick_outputs(runs: SimpleNamespace, seen: gr.State) -> NamedOutputs:
    return NamedOutputs(**{name: getattr(runs, name) for name in TICK_OUTPUTS}, seen=seen)


def build(studio: Studio, demo: gr.Blocks) -> dict[str, Any]:
    with gr.Tab("Train", id="train"):
        form, runs = _form(studio), _runs(studio)
        seen = gr.State(None)
        timer = gr.Timer(TICK_SECONDS)
    fields, private = form.fields, {"api_visibility": "private"}
    inputs, size_fields = [fields[n] for n in FORM_FIELDS], [fields[f] for f in SIZE_FIELDS]
    gr.on(
        [c.change for c in inputs],
        show_config,
        inputs,
        [form.preview, form.problems],
        trigger_mode="always_last",
        show_progress="hidden",
        **private,
    )
    form.preset.input(partial(load_preset, studio), form.preset, [*inputs, form.size], **private)
    form.size.input(apply_size, form.size, size_fields, **private)
    gr.on([c.change for c in size_fields], size_label, size_fields, form.size, show_progress="hidden", **private)
    start = partial(start_run, studio)
    # One named parameter per config field, so API callers pass them by name (start_training(rank=4, ...)).
    start.__signature__ = inspect.Signature(
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in FORM_FIELDS]
    )
    form.start.click(start, inputs, [runs.run, form.problems, fields["name"]], api_name="start_training")
    for action in ("stop", "resume", "start_over", "kill", "cancel"):
        getattr(runs, action).click(
            partial(run_command, studio, action), runs.run, [runs.run, runs.start_over], api_name=f"{action}_run"
        )
    runs.delete.click(
        partial(run_command, studio, "delete"),
        [runs.run, runs.confirm],
        [runs.run, runs.start_over],
        api_name="delete_run",
    )
    runs.refresh.click(partial(refresh_runs, studio), runs.run, runs.run, **private)
    runs.clone.click(partial(clone_run, studio), runs.run, [*inputs, form.size], api_name="clone_run")
    form.save.click(
        partial(save_preset, studio), [form.preset_name, *inputs], [form.preset, form.problems], api_name="save_preset"
    )
    outputs = tick_outputs(runs, seen)
    timer.tick(
        outputs.wrap(partial(tick, studio)),
        [runs.run, seen],
        outputs.components,
        api_name="train_tick",
        show_progress="hidden",
    )
    demo.load(partial(on_load, studio), None, [runs.run, *inputs, form.size, form.preset], **private)
    demo.load(show_config, inputs, [form.preview, form.problems], **private)
    return {"fields": fields, "run": runs.run}
