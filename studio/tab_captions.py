"""The Data tab's captions section: "Write missing captions" (proposals reviewed clip by clip: accept, edit or
reject), a prompt_prefix preview, and find-and-replace across captions with a preview of what changes.

The logic is studio.caption_controller's; the handlers here take inputs by name (`inputs_kwargs`) and return
outputs by name (studio.named_outputs). tab_data builds this section and passes `refresh`, which chains its
report's re-check onto an event, so a saved caption shows in the report.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr
import pandas as pd

from studio.folders import REFUSALS
from studio.named_outputs import NamedOutputs
from studio.named_outputs import bind as bound
from studio.workspace import Studio

PROPOSAL_COLUMNS = ["clip", "proposal", "caption now"]
PREFIX_COLUMNS = ["clip", "caption as trained"]
REPLACE_COLUMNS = ["clip", "before", "after"]
REVIEW = ("caption_status", "proposals", "proposal_keys", "proposal_clip", "proposal_text")


def _proposals(studio: Studio, dataset: str) -> dict[str, Any]:
    """The proposals table, its keys, and the review box on the first proposal."""
    found = studio.captions.proposals(dataset) if dataset else []
    rows = [[p.key, p.text, p.current] for p in found]
    keys = [p.key for p in found]
    return {
        "proposals": pd.DataFrame(rows, columns=PROPOSAL_COLUMNS),
        "proposal_keys": keys,
        "proposal_clip": gr.update(choices=keys, value=keys[0] if keys else None),
        "proposal_text": found[0].text if found else "",
    }


def owner(request: gr.Request | None) -> str | None:
    """The browser session that started captioning is the one that may cancel it."""
    return getattr(request, "session_hash", None) if request is not None else None


# --- handlers (module level, `studio` bound) -----------------------------------------------------------
def show(studio: Studio, dataset: str, base_model: str):
    """The model note (Write missing captions only with a model at hand) and the proposals waiting in `dataset`."""
    offer = studio.captions.offer(base_model=base_model)
    shown = {"caption_offer": offer.note, "caption_write": gr.update(interactive=offer.model is not None)}
    try:
        return {**shown, **_proposals(studio, dataset)}
    except REFUSALS as exc:
        return {**shown, "caption_status": f"Not listed: {exc}"}


def write_missing(studio: Studio, session: gr.Request, progress=gr.Progress(), *, dataset: str, base_model: str):
    """Run `trainer caption` for the clips without a caption; stream its progress, then list the proposals."""
    try:
        for event in studio.captions.write_missing(dataset, owner=owner(session), base_model=base_model):
            if event["event"] == "start":
                yield {
                    "caption_status": f"Loading {studio.datasets.paths.redact(event['model'])} to caption "
                    f"{event['clips']} clip(s); {event['skipped']} have a caption or a proposal."
                }
            elif event["event"] == "progress":
                progress((event["clip"], event["clips"]), desc="captions", unit="clips")
                state = event["problem"] or "proposed"
                yield {
                    "caption_status": f"Clip {event['clip']} of {event['clips']} ({event['key']}): {state}; about "
                    f"{event['eta']:.0f} s left.",
                    **_proposals(studio, dataset),
                }
            elif event["event"] == "done":
                failed = f", {event['failed']} failed (see the status above)" if event["failed"] else ""
                yield {
                    **_proposals(studio, dataset),
                    "caption_status": f"{event['written']} caption(s) proposed{failed}: review them below; nothing "
                    "is saved until you accept it.",
                }
    except REFUSALS as exc:
        gr.Warning(str(exc))
        yield {"caption_status": f"No captions written: {exc}"}


def cancel(studio: Studio, request: gr.Request):
    if studio.captions.cancel(owner(request) or ""):
        return "Cancelling; the proposals written so far are kept."
    return "Nothing to cancel: this page is not writing captions."


def pick(studio: Studio, dataset: str, proposal_clip: str):
    found = {p.key: p for p in studio.captions.proposals(dataset)} if dataset else {}
    return found[proposal_clip].text if proposal_clip in found else ""


def select_row(keys: list[str], evt: gr.SelectData):
    row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    return keys[row] if 0 <= row < len(keys) else gr.skip()


def accept(studio: Studio, *, dataset: str, proposal_clip: str, proposal_text: str, replace_mine: bool):
    """Save the proposal as shown in the box (edited or not) as the clip's caption."""
    try:
        target = studio.captions.accept(dataset, proposal_clip or "", proposal_text, replace_mine=bool(replace_mine))
    except REFUSALS as exc:
        gr.Warning(str(exc))
        return {"caption_status": f"Not saved: {exc}"}
    return {
        "caption_status": f"Caption of {proposal_clip!r} saved to metas/{target.name}.",
        **_proposals(studio, dataset),
    }


def reject(studio: Studio, *, dataset: str, proposal_clip: str):
    try:
        studio.captions.reject(dataset, proposal_clip or "")
    except REFUSALS as exc:
        gr.Warning(str(exc))
        return {"caption_status": f"Not rejected: {exc}"}
    return {
        "caption_status": f"Proposal for {proposal_clip!r} rejected; its caption is unchanged.",
        **_proposals(studio, dataset),
    }


def preview_prefix(studio: Studio, dataset: str, prefix: str):
    try:
        rows = studio.captions.prefix_preview(dataset, prefix)
    except REFUSALS as exc:
        gr.Warning(str(exc))
        return gr.skip()
    return pd.DataFrame(rows, columns=PREFIX_COLUMNS)


def preview_replace(studio: Studio, *, dataset: str, find: str, replace: str):
    """Every caption the replacement changes, before and after; the Replace button then applies exactly that."""
    try:
        changes, digest = studio.captions.replace_preview(dataset, find or "", replace or "")
    except REFUSALS as exc:
        gr.Warning(str(exc))
        return {"replace_table": pd.DataFrame(columns=REPLACE_COLUMNS), "replace_digest": None}
    count = len(changes)
    return {
        "replace_table": pd.DataFrame(changes, columns=REPLACE_COLUMNS),
        "replace_digest": digest,
        "replace_go": gr.update(value=f"Replace in {count} caption(s)", interactive=count > 0),
    }


def apply_replace(studio: Studio, *, dataset: str, find: str, replace: str, replace_digest: str | None):
    try:
        count = studio.captions.replace_apply(dataset, find or "", replace or "", replace_digest or "")
    except REFUSALS as exc:
        gr.Warning(str(exc))
        return {"caption_status": f"Nothing replaced: {exc}"}
    gr.Info(f"{count} caption(s) changed.")
    return {
        "caption_status": f"{count} caption(s) changed.",
        "replace_table": pd.DataFrame(columns=REPLACE_COLUMNS),
        "replace_digest": None,
        "replace_go": gr.update(value="Replace", interactive=False),
    }


# --- layout and wiring ------------------------------------------------------------------------------------
def _layout(studio: Studio) -> dict[str, Any]:
    ui: dict[str, Any] = {}
    with gr.Accordion("Captions written for you", open=True, visible=not studio.workspace.read_only):
        offer = studio.captions.offer()  # for the Train form's first model, "tiny": the default captioner
        ui["caption_offer"] = gr.Markdown(offer.note, elem_id="data-caption-offer")
        with gr.Row():
            ui["caption_write"] = gr.Button(
                "Write missing captions", interactive=offer.model is not None, elem_id="data-caption-write", scale=3
            )
            ui["caption_cancel"] = gr.Button("Cancel", elem_id="data-caption-cancel", scale=1)
        ui["caption_status"] = gr.Markdown(elem_id="data-caption-status")
        ui["proposals"] = gr.Dataframe(
            pd.DataFrame(columns=PROPOSAL_COLUMNS),
            interactive=False,
            wrap=True,
            max_height=260,
            label="proposals (click a row to review it)",
            elem_id="data-proposals",
        )
        ui["proposal_keys"] = gr.State([])
        with gr.Row(equal_height=True):
            ui["proposal_clip"] = gr.Dropdown([], label="proposal for clip", scale=1, elem_id="data-proposal-clip")
            ui["proposal_text"] = gr.Textbox(
                label="proposed caption (edit before accepting)", lines=3, scale=3, elem_id="data-proposal-text"
            )
        with gr.Row():
            ui["accept"] = gr.Button("Accept", variant="primary", elem_id="data-proposal-accept")
            ui["reject"] = gr.Button("Reject", elem_id="data-proposal-reject")
            ui["replace_mine"] = gr.Checkbox(
                False,
                label="replace captions I wrote",
                info="Without it, a proposal never replaces a caption the clip has.",
                elem_id="data-proposal-replace",
            )
    with gr.Accordion("Bulk caption tools", open=False):
        ui["prompt_prefix"] = gr.Textbox(
            label="prompt_prefix (trigger phrase)",
            placeholder="The robot arm is performing a task. ",
            info="Put before every caption when training; carried to the Train form. Preview below.",
            elem_id="data-prefix",
        )
        ui["prefix_table"] = gr.Dataframe(
            pd.DataFrame(columns=PREFIX_COLUMNS),
            interactive=False,
            wrap=True,
            max_height=200,
            elem_id="data-prefix-table",
        )
        with gr.Row(equal_height=True, visible=not studio.workspace.read_only):
            ui["find"] = gr.Textbox(label="find", scale=2, elem_id="data-find")
            ui["replace"] = gr.Textbox(label="replace with", scale=2, elem_id="data-replace")
            ui["replace_preview"] = gr.Button("Preview", scale=1, elem_id="data-replace-preview")
            ui["replace_go"] = gr.Button("Replace", interactive=False, scale=1, elem_id="data-replace-go")
        ui["replace_table"] = gr.Dataframe(
            pd.DataFrame(columns=REPLACE_COLUMNS),
            interactive=False,
            wrap=True,
            max_height=200,
            elem_id="data-replace-table",
        )
        ui["replace_digest"] = gr.State(None)
    return ui


def build(studio: Studio, demo: gr.Blocks, dataset: gr.components.Component, refresh: Callable) -> dict[str, Any]:
    """The section, wired; `refresh(event)` chains the Data tab's report re-check after `event`."""
    ui = _layout(studio)
    ui["dataset"] = dataset
    ui["base_model"] = gr.State("")  # the Train form's model (studio.ui keeps it current)
    private = {"api_visibility": "private"}

    def io(handler, inputs: tuple[str, ...], outputs: tuple[str, ...]) -> dict[str, Any]:
        named = NamedOutputs(**{n: ui[n] for n in outputs})
        return {
            "fn": named.wrap(bound(handler, studio)),
            "inputs_kwargs": {n: ui[n] for n in inputs},
            "outputs": named.components,
        }

    listed = ("caption_offer", "caption_write", *REVIEW[1:])
    for event in (dataset.change, ui["base_model"].change, demo.load):
        event(**io(show, ("dataset", "base_model"), listed), **private)
    ui["caption_write"].click(
        **io(write_missing, ("dataset", "base_model"), REVIEW),
        api_name="write_missing_captions",
        concurrency_limit=None,
    )
    ui["caption_cancel"].click(bound(cancel, studio), None, ui["caption_status"], api_name="cancel_captions")
    ui["proposals"].select(select_row, ui["proposal_keys"], ui["proposal_clip"], **private)
    ui["proposal_clip"].change(bound(pick, studio), [dataset, ui["proposal_clip"]], ui["proposal_text"], **private)
    review = ("dataset", "proposal_clip")
    refresh(
        ui["accept"].click(**io(accept, (*review, "proposal_text", "replace_mine"), REVIEW), api_name="accept_caption")
    )
    ui["reject"].click(**io(reject, review, REVIEW), api_name="reject_caption")
    prefix = bound(preview_prefix, studio)
    ui["prompt_prefix"].change(prefix, [dataset, ui["prompt_prefix"]], ui["prefix_table"], **private)
    dataset.change(prefix, [dataset, ui["prompt_prefix"]], ui["prefix_table"], **private)
    replace_out = ("replace_table", "replace_digest", "replace_go")
    ui["replace_preview"].click(**io(preview_replace, ("dataset", "find", "replace"), replace_out), **private)
    applied = ui["replace_go"].click(
        **io(apply_replace, ("dataset", "find", "replace", "replace_digest"), ("caption_status", *replace_out)),
        api_name="replace_in_captions",
    )
    refresh(applied)
    return {"prompt_prefix": ui["prompt_prefix"], "base_model": ui["base_model"]}
