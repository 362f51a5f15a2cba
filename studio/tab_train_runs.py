"""Train tab, its second half: the runs (stop, resume, start over, kill, cancel, delete) and a run's live view
(headline, curves, samples, log) redrawn by a timer tick."""

from __future__ import annotations

import html
from functools import partial
from types import SimpleNamespace
from typing import Any

import gradio as gr
import pandas as pd

from studio.folders import REFUSALS
from studio.jobs import NoCheckpoint
from studio.metrics_tail import RAW, SMOOTHED, loss_curve
from studio.named_outputs import NamedOutputs
from studio.run_samples import curve_marks, sample_strip, strip_columns
from studio.workspace import Studio
from trainer.spec.config import ConfigError

TICK_SECONDS = 1.0
NO_RUN = "No run yet: press **Start training**."
LOG_LINES = 14
# raw points faint, the trend strong; the steps sampled and checkpointed marked on the trend
LOSS_COLOURS = {RAW: "#c7cedb", SMOOTHED: "#2563eb", "samples": "#f59e0b", "checkpoints": "#10b981"}


def _log_html(text: str) -> str:
    return f'<pre class="run-log">{html.escape(text) or "(no output yet)"}</pre>'


# --- handlers (module level, `studio` bound with functools.partial) ----------------------------------------
def run_command(studio: Studio, action: str, name: str, typed: str = "") -> dict[str, Any]:
    """Stop (graceful), resume (from the latest checkpoint), start over, kill or delete the chosen run.

    Resume of a run without a checkpoint does not silently restart it: the refusal shows the Start over button."""
    if not name:
        gr.Warning("Pick a run first.")
        return {}
    start_over = gr.update(visible=False)
    try:
        if action == "stop":
            studio.jobs.stop(name)
            gr.Info(f"Stopping {name!r}: it finishes the step, then saves a checkpoint and the adapter.")
        elif action in ("resume", "start_over"):
            run = studio.queue.resume(name, start_over=action == "start_over")
            how = "starts over from step 0" if action == "start_over" else "resumes from its latest checkpoint"
            if run.position:
                gr.Info(f"Run {name!r} is queued ({studio.queue.note(name)}); it {how} when its turn comes.")
            else:
                gr.Info(f"Run {name!r} {how}.")
        elif action == "cancel":
            studio.queue.cancel(name)
            gr.Info(f"Run {name!r} left the queue; its config stays: clone it to queue it again.")
        elif action == "delete":
            studio.jobs.delete(name, typed)
            gr.Info(f"Run {name!r} deleted.")
            names = studio.monitor.run_names()
            return {"run": gr.update(choices=names, value=names[0] if names else None), "start_over": start_over}
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
    return {"run": gr.update(choices=studio.monitor.run_names(), value=name), "start_over": start_over}


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
            "lr_plot": None,
            "log": "",
            "numbers": {},
            "grad_plot": None,
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
    frame = view.frame if len(view.frame) else None  # never drawn from an empty frame (see layout)
    strip = sample_strip(view.run_dir, view.events, studio.workspace.gradio_temp / "samples")
    columns = strip_columns(view.events)  # a row per shown step, its prompts side by side
    loss_plot = pd.concat([curve, curve_marks(curve, view.events)], ignore_index=True) if len(curve) else None
    return {
        **shown,
        "loss_plot": loss_plot,
        "lr_plot": frame,
        "log": _log_html(view.log),
        "grad_plot": frame,
        "samples": gr.update(value=strip, columns=columns),
        "seen": view.signature,
    }


def refresh_runs(studio: Studio, current: str | None):
    names = studio.monitor.run_names()
    return gr.update(choices=names, value=current if current in names else (names[0] if names else None))


# --- layout and wiring ------------------------------------------------------------------------------------
def layout(studio: Studio) -> SimpleNamespace:
    """The runs panel's components by name (with `seen`, what the page last drew, and the tick's timer)."""
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
        # None, not an empty frame, until there is a curve: a plot first drawn from an empty frame keeps the
        # layout of no data (gradio 6.31, seen in the browser): a colour-split one stays blank, the others clip
        # their axis labels ("e-4" for 1.0e-4, ".13" for 0.13) and lose the step axis.
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
            None,
            x="step",
            y="lr",
            label="learning rate",
            height=260,
            x_axis_format="d",
            y_axis_format=".1e",
            elem_id="lr-plot",
        )
        grad_plot = gr.LinePlot(
            None,
            x="step",
            y="grad_norm",
            label="gradient norm (before clipping)",
            height=260,
            x_axis_format="d",
            elem_id="grad-norm-plot",
        )
    samples = gr.Gallery(
        label="samples (sample_every): a row per step, the base (step 0) first; frames left to right",
        columns=1,
        object_fit="contain",
        height="auto",
        elem_id="train-samples",
    )
    gr.Markdown("**Log** (the last lines of the run's process.log)")
    # Plain <pre>, sized to its lines: a scrolling box would keep showing the oldest line.
    log = gr.HTML(elem_id="train-log")
    with gr.Accordion("Progress as JSON", open=False):
        numbers = gr.JSON(label="progress", elem_id="train-numbers")
    seen = gr.State(None)
    timer = gr.Timer(TICK_SECONDS)
    return SimpleNamespace(
        seen=seen,
        timer=timer,
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


def wire(studio: Studio, runs: SimpleNamespace) -> None:
    """The run buttons (endpoints stop_run, resume_run, start_over_run, kill_run, cancel_run, delete_run)."""
    private = {"api_visibility": "private"}
    commanded = NamedOutputs(run=runs.run, start_over=runs.start_over)
    for action in ("stop", "resume", "start_over", "kill", "cancel"):
        getattr(runs, action).click(
            commanded.wrap(partial(run_command, studio, action)),
            runs.run,
            commanded.components,
            api_name=f"{action}_run",
        )
    runs.delete.click(
        commanded.wrap(partial(run_command, studio, "delete")),
        [runs.run, runs.confirm],
        commanded.components,
        api_name="delete_run",
    )
    runs.refresh.click(partial(refresh_runs, studio), runs.run, runs.run, **private)


def wire_tick(studio: Studio, runs: SimpleNamespace) -> None:
    """The live view, redrawn every TICK_SECONDS (endpoint train_tick)."""
    outputs = tick_outputs(runs, runs.seen)
    runs.timer.tick(
        outputs.wrap(partial(tick, studio)),
        [runs.run, runs.seen],
        outputs.components,
        api_name="train_tick",
        show_progress="hidden",
    )
