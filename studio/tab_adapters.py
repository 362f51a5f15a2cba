"""Adapters tab: every adapter in the workspace with its card; download as a zip, delete, import, publish to the Hub."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import gradio as gr

from studio.adapter_registry import TABLE_COLUMNS
from studio.folders import REFUSALS
from studio.named_outputs import NamedOutputs
from studio.publish_controller import publish_adapter
from studio.run_samples import sample_steps, samples_at
from studio.workspace import Studio
from trainer.spec.run_folder import CARD_FILE, CARD_SUMMARY_KEYS, read_events

# The registry's table less the folder (a server path) and the revision (in the card beside it).
SHOWN_COLUMNS = [c for c in TABLE_COLUMNS if c not in ("path", "revision")]
CARD_LINES = (*CARD_SUMMARY_KEYS, "dataset")


def card_markdown(info, shown_path: str) -> str:
    loss = "n/a" if info.final_loss is None else f"{info.final_loss:.4f}"
    values = {**{k: getattr(info, k) for k in CARD_LINES}, "final_loss": loss}
    rows = "\n".join(f"| {k} | {'—' if values[k] is None else values[k]} |" for k in CARD_LINES)
    return f"**{info.name}** ({info.source}, `{shown_path}`)\n\n| card | |\n|---|---|\n{rows}"


def adapter_table(studio: Studio):
    table = studio.adapters.table()
    table["final_loss"] = table["final_loss"].map(lambda x: None if x is None or x != x else round(float(x), 4))
    table["dataset"] = table["dataset"].map(lambda d: studio.adapters.paths.show(d) if isinstance(d, str) else d)
    return table[SHOWN_COLUMNS]


# --- handlers (module level, `studio` bound with functools.partial) ----------------------------------------
def listing(studio: Studio, current: str | None = None) -> dict[str, Any]:
    names = [i.name for i in studio.adapters.list()]
    value = current if current in names else (names[0] if names else None)
    return {"table": adapter_table(studio), "chosen": gr.update(choices=names, value=value)}


def run_samples(studio: Studio, info) -> list[tuple[str, str]]:
    """The filmstrips of a run's adapter's samples: the base (the first sampled step) and the last step; none
    for an imported adapter or a run without samples."""
    if info.source != "run":
        return []
    run_dir = info.path.parent
    events = read_events(run_dir)
    steps = list(sample_steps(events))
    if not steps:
        return []
    return samples_at(run_dir, events, {steps[0], steps[-1]}, studio.workspace.gradio_temp / "samples")


def show(studio: Studio, name: str | None) -> dict[str, Any]:
    """The adapter's card (markdown and adapter_card.json) and its run's filmstrips."""
    if not name:
        return {"card": "No adapter yet: finish a training run or import one.", "card_json": None, "samples": []}
    try:
        info = studio.adapters.get(name)
    except REFUSALS as exc:
        gr.Warning(str(exc))
        return {"card": str(exc), "card_json": None, "samples": []}
    try:
        raw = json.loads((info.path / CARD_FILE).read_text())
    except (OSError, ValueError):
        raw = None
    shown = card_markdown(info, studio.adapters.paths.show(info.path))
    evaluation = evaluation_markdown((raw or {}).get("evaluation") if isinstance(raw, dict) else None)
    return {"card": shown + evaluation, "card_json": raw, "samples": run_samples(studio, info)}


def evaluation_markdown(entry: dict | None) -> str:
    """The card's latest evaluation (Generate & compare's Evaluate) as a small table, beside the base model's."""
    if not isinstance(entry, dict) or not isinstance(entry.get("scores"), dict):
        return ""
    base = entry.get("base") or {}
    rows = []
    for key, label, digits in (
        ("val_loss", "val loss", 4),
        ("psnr", "PSNR (dB)", 2),
        ("ssim", "SSIM", 3),
        ("hand_accuracy", "hand accuracy", 2),
    ):
        rows.append(f"| {label} | {_score(entry['scores'].get(key), digits)} | {_score(base.get(key), digits)} |")
    return (
        f"\n\n**Evaluation** on {entry.get('clips')} clip(s) of `{entry.get('data')}` ({entry.get('created')})"
        "\n\n| score | this adapter | base model |\n|---|---|---|\n" + "\n".join(rows)
    )


def _score(value, digits: int) -> str:
    return "—" if not isinstance(value, (int, float)) else f"{value:.{digits}f}"


def make_zip(studio: Studio, name: str):
    try:
        return gr.update(value=str(studio.adapters.zip(name)), visible=True)
    except REFUSALS as exc:
        raise gr.Error(str(exc)) from None


def remove(studio: Studio, name: str, typed: str) -> dict[str, Any]:
    try:
        studio.adapters.delete(name, typed)
    except REFUSALS as exc:
        gr.Warning(str(exc))
        return {}
    gr.Info(f"Adapter {name!r} deleted.")
    return {**listing(studio), "confirm": ""}


def import_upload(studio: Studio, files: list[str] | None, name: str | None) -> dict[str, Any]:
    try:
        info = studio.adapters.import_upload(files or [], (name or "").strip())
    except REFUSALS as exc:
        gr.Warning(str(exc))
        return {}
    gr.Info(f"Adapter {info.name!r} imported.")
    return listing(studio, info.name)


def publish(studio: Studio, name: str | None, repo: str | None, private: bool):
    try:
        url = publish_adapter(studio.adapters, name, repo, bool(private))
    except REFUSALS as exc:
        gr.Warning(str(exc))
        return str(exc)
    gr.Info(f"Adapter {name!r} published.")
    return f"Published: [{url}]({url})"


# --- layout and wiring ------------------------------------------------------------------------------------
def build(studio: Studio, demo: gr.Blocks) -> dict[str, Any]:
    with gr.Tab("Adapters", id="adapters") as tab:
        with gr.Row():
            table = gr.Dataframe(
                adapter_table(studio),
                label="adapters",
                interactive=False,
                wrap=True,
                max_height=300,
                elem_id="adapters-table",
                scale=5,
            )
            refresh = gr.Button("Refresh", scale=0, min_width=100)
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                chosen = gr.Dropdown([], label="adapter", allow_custom_value=True, elem_id="adapters-chosen")
                card = gr.Markdown(elem_id="adapters-card")
                samples = gr.Gallery(
                    label="its run's samples: the base (step 0) above the last step; frames left to right",
                    columns=2,
                    object_fit="contain",
                    height="auto",
                    elem_id="adapters-samples",
                )
                with gr.Accordion(CARD_FILE, open=False):
                    card_json = gr.JSON()
            with gr.Column(scale=2):
                writable = not studio.workspace.read_only
                zip_button = gr.Button("Download as zip")
                zip_file = gr.File(label="zip", interactive=False, visible=False)
                confirm = gr.Textbox(
                    label="confirm deletion",
                    placeholder="type the adapter's name",
                    visible=writable,
                    info="Deletes the adapter folder; a run's checkpoints and logs stay.",
                )
                delete = gr.Button("Delete adapter", variant="stop", visible=writable)
                with gr.Accordion("Import an adapter folder", open=False, visible=writable):
                    upload = gr.File(
                        label="a .zip of the folder, or its files",
                        file_count="multiple",
                        file_types=[".zip", ".safetensors", ".json", ".md"],
                    )
                    new_name = gr.Textbox(label="name", info="Letters, digits, '-', '_' and '.'.")
                    import_button = gr.Button("Import")
                with gr.Accordion("Publish to the Hugging Face Hub", open=False):
                    repo = gr.Textbox(
                        label="repository",
                        placeholder="owner/name",
                        elem_id="adapters-repo",
                        info="Weights, adapter_card.json and a model card. The token is HF_TOKEN or "
                        "`hf auth login` on the studio's machine.",
                    )
                    private_repo = gr.Checkbox(label="private", value=True)
                    publish_button = gr.Button("Publish", elem_id="adapters-publish")
                    published = gr.Markdown(elem_id="adapters-published")
    private = {"api_visibility": "private"}
    listed = NamedOutputs(table=table, chosen=chosen)
    shown = NamedOutputs(card=card, card_json=card_json, samples=samples)
    removed = NamedOutputs(table=table, chosen=chosen, confirm=confirm)
    refreshed = listed.wrap(partial(listing, studio))
    refresh.click(refreshed, chosen, listed.components, api_name="list_adapters")
    chosen.change(shown.wrap(partial(show, studio)), chosen, shown.components, **private)
    zip_button.click(partial(make_zip, studio), chosen, zip_file, api_name="zip_adapter")
    delete.click(
        removed.wrap(partial(remove, studio)), [chosen, confirm], removed.components, api_name="delete_adapter"
    )
    import_button.click(
        listed.wrap(partial(import_upload, studio)), [upload, new_name], listed.components, api_name="import_adapter"
    )
    publish_button.click(partial(publish, studio), [chosen, repo, private_repo], published, api_name="publish_adapter")
    demo.load(refreshed, None, listed.components, **private)
    tab.select(refreshed, chosen, listed.components, **private)  # a run may have finished since the page loaded
    return {}
