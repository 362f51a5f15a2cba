"""Generate & compare: which variants run beside the base model, at what strength, and what each looked like
while it trained.

A variant is an adapter or a run's checkpoint (run@step-N). Picking one shows the filmstrips of its run's
training samples at that step, beside the run's base row (step 0), so a glance says which checkpoint has the
arm moving before anything is generated.
"""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace
from typing import Any

import gradio as gr
import pandas as pd

from studio.folders import REFUSALS
from studio.run_samples import sampled_step_at, samples_at
from studio.workspace import Studio
from trainer.spec.bounds import strength_problem
from trainer.spec.run_folder import folder_step, read_events

STRENGTH_COLUMNS = ["adapter", "strength"]
MAX_PREVIEWED = 6  # variants whose samples are shown: a page of filmstrips, not the whole workspace


def user_error(message: str) -> gr.Error:
    """A one-sentence error for the page, kept out of the server log (it is not a fault of the studio)."""
    return gr.Error(message, print_exception=False)


def strengths(table: Any) -> dict[str, float]:
    """The strengths table as {variant: strength}; a value that is not a bounded number is the user's error."""
    if table is None:
        return {}
    frame = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table.get("data", []), columns=STRENGTH_COLUMNS)
    out = {}
    for name, value in frame[STRENGTH_COLUMNS].itertuples(index=False):
        try:
            out[str(name)] = float(value)
        except (TypeError, ValueError):
            raise user_error(f"The strength of {name!r} must be a number (got {value!r}).") from None
        problem = strength_problem(out[str(name)])
        if problem:
            raise user_error(f"The strength of {name!r} {problem}.")
    return out


# --- handlers (module level, `studio` bound with functools.partial) ----------------------------------------
def adapter_choices(studio: Studio):
    """The variants to pick: adapters, then the runs' checkpoints as run@step-N."""
    return gr.update(choices=[a.name for a in studio.adapters.variants()])


def unusable_note(studio: Studio):
    """Why a checkpoint is not offered (an older one without a loadable adapter), or nothing."""
    note = "".join(f"- `{label}`: {why}.\n" for label, why in studio.adapters.checkpoints()[1].items())
    return gr.update(value="Checkpoints not offered:\n" + note if note else "", visible=bool(note))


def sync_strengths(selected, table):
    current = strengths(table) if table is not None and len(getattr(table, "index", [])) else {}
    return pd.DataFrame([(n, current.get(n, 1.0)) for n in selected or []], columns=STRENGTH_COLUMNS)


def variant_samples(studio: Studio, picked: list[str] | None):
    """(filmstrip, caption) of each picked variant's training samples: a run's adapter at the run's last sampled
    step, a checkpoint at its own step (or the last sample before it), each run's base row once, first. An
    imported adapter, or a run that sampled nothing, shows nothing; the gallery hides when nothing is left."""
    serve = studio.workspace.gradio_temp / "samples"
    rows: dict[str, list[tuple[str, str]]] = {}  # run folder -> its base row, then one row per picked variant
    for name in list(picked or [])[:MAX_PREVIEWED]:
        try:
            info = studio.adapters.variant(name)
        except REFUSALS:
            continue  # gone since the page listed it; Generate says so if it is still picked then
        if info.source == "imported":
            continue
        run_dir = info.path.parent if info.source == "run" else info.path.parent.parent
        events = read_events(run_dir)
        step = sampled_step_at(events, None if info.source == "run" else folder_step(info.path))
        first = sampled_step_at(events, 0)
        if step is None:
            continue
        if str(run_dir) not in rows and first is not None and first != step:
            base = samples_at(run_dir, events, {first}, serve)
            rows[str(run_dir)] = [(p, f"{run_dir.name} · {c}") for p, c in base]
        shown = samples_at(run_dir, events, {step}, serve)
        rows.setdefault(str(run_dir), []).extend((p, f"{name} · {c}") for p, c in shown)
    pictures = [item for row in rows.values() for item in row]
    return gr.update(value=pictures, visible=bool(pictures))


# --- layout and wiring ------------------------------------------------------------------------------------
def layout(studio: Studio) -> SimpleNamespace:
    with gr.Row(equal_height=False):
        adapters = gr.CheckboxGroup(
            [a.name for a in studio.adapters.variants()],
            scale=4,
            label="adapters to compare with the base model",
            info="From finished runs and imported adapter folders; a run's checkpoints as run@step-N. Picked, each "
            "shows below what its run drew while training at that step (frames left to right).",
            elem_id="gen-adapters",
        )
        refresh = gr.Button("Refresh", scale=0, min_width=90, size="sm")
    unusable = gr.Markdown("", visible=False, elem_id="gen-unusable")
    samples = gr.Gallery(
        label="what the picked variants drew while training",
        show_label=False,  # a floating label would cover the first row; the list's help says what these are
        columns=2,
        object_fit="contain",
        height="auto",
        visible=False,
        elem_id="gen-variant-samples",
    )
    table = gr.Dataframe(
        pd.DataFrame(columns=STRENGTH_COLUMNS),
        label="strength of each adapter",
        datatype=["str", "number"],
        interactive=True,
        elem_id="gen-strengths",
    )
    with gr.Row():
        go = gr.Button("Generate", variant="primary", elem_id="gen-go", scale=3)
        cancel_button = gr.Button("Cancel", elem_id="gen-cancel", scale=1)
    status = gr.Markdown("The base model always runs; every variant starts from the same noise.", elem_id="gen-status")
    return SimpleNamespace(
        adapters=adapters,
        unusable=unusable,
        refresh=refresh,
        samples=samples,
        strengths=table,
        go=go,
        cancel=cancel_button,
        status=status,
    )


def wire(studio: Studio, var: SimpleNamespace, demo: gr.Blocks, tab) -> None:
    """The variant list (endpoint refresh_adapters), the strengths table and the picked variants' samples."""
    private = {"api_visibility": "private"}
    var.adapters.change(sync_strengths, [var.adapters, var.strengths], var.strengths, **private)
    var.adapters.change(partial(variant_samples, studio), var.adapters, var.samples, **private)
    refresh = partial(adapter_choices, studio)
    var.refresh.click(refresh, None, var.adapters, api_name="refresh_adapters")
    demo.load(refresh, None, var.adapters, **private)
    tab.select(refresh, None, var.adapters, **private)  # a run may have finished since the page loaded
    gr.on([var.refresh.click, demo.load, tab.select], partial(unusable_note, studio), None, var.unusable, **private)
