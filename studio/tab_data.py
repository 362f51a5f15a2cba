"""Data tab: pick the built-in sample or import a dataset, read its check-data report, preview clips, fix captions."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr
import pandas as pd

from studio import tab_captions
from studio.dataset_controller import DATASETS_DIR, REPORT_COLUMNS, caption_digest, default_import_name
from studio.folders import REFUSALS
from studio.named_outputs import NamedOutputs
from studio.previews import ENLARGED_DIR, enlarged
from studio.train_form import DEFAULT_PRESET, preset_values
from studio.workspace import Studio
from trainer.datasets import DatasetError
from trainer.spec.embedded import SAMPLE_DATA

SAMPLE_COPY = default_import_name(SAMPLE_DATA)  # the sample's editable copy: datasets/sample-robot
SAMPLE, FOLDER, UPLOAD, HUB = "built-in sample", "local folder", "upload (.zip, or .mp4 + .txt)", "Hub dataset"
LEROBOT = "LeRobot folder"
SOURCES = (SAMPLE, FOLDER, LEROBOT, UPLOAD, HUB)
SERVER_FOLDERS = (FOLDER, LEROBOT)  # read a folder of the server: only with --allow-local-folders


def sources(studio: Studio) -> tuple[str, ...]:
    """What the Data tab offers: a read-only studio only the sample; server folders only when allowed."""
    if studio.workspace.read_only:
        return (SAMPLE,)
    return tuple(s for s in SOURCES if s not in SERVER_FOLDERS or studio.workspace.allow_local_folders)


EMPTY_REPORT = pd.DataFrame(columns=REPORT_COLUMNS)


def _hub_info(studio: Studio) -> str:
    offered = studio.workspace.access.offer_note("dataset")
    if offered:
        return offered
    if os.environ.get("HF_HUB_OFFLINE", "").strip() not in ("", "0"):
        return "HF_HUB_OFFLINE is set: only datasets already in the Hugging Face cache can be imported."
    return "A dataset repository on the Hugging Face Hub (needs the network; gated ones need HF_TOKEN)."


# --- handlers (module level, `studio` bound with functools.partial) ----------------------------------------
def pick_source(studio: Studio, choice: str) -> dict[str, Any]:
    """The inputs the chosen source needs, by name."""
    return {
        "folder": gr.update(visible=choice in (FOLDER, LEROBOT)),
        "upload": gr.update(visible=choice == UPLOAD),
        "hub": gr.update(visible=choice == HUB),
        "lerobot": gr.update(visible=choice == LEROBOT),
        "name": gr.update(visible=choice != SAMPLE),
        "go": gr.update(value="Use the built-in sample" if choice == SAMPLE else "Import"),
        "copy": gr.update(visible=choice == SAMPLE and not studio.workspace.read_only),
    }


def import_sample_copy(studio: Studio) -> dict[str, Any]:
    """The built-in sample is read-only: its editable copy is datasets/sample-robot, imported on the first click and
    picked again on the next ones (one copy, however often it is pressed)."""
    copy = f"{DATASETS_DIR}/{SAMPLE_COPY}"
    if copy in studio.datasets.choices():
        message = f"The copy of the sample is `{copy}` (edited captions included); it is picked again."
        return {"message": message, "dataset": gr.update(choices=studio.datasets.choices(), value=copy)}
    try:
        result = studio.datasets.import_source(SAMPLE_DATA, SAMPLE_COPY)
    except REFUSALS as exc:
        gr.Warning(str(exc))
        return {"message": f"Not imported: {exc}"}
    return {
        "message": f"{result.message} Its captions and clips can be edited here; train on `{result.dataset}`.",
        "dataset": gr.update(choices=studio.datasets.choices(), value=result.dataset),
    }


def suggest_name(text: str):
    return default_import_name(text) if text else gr.skip()


def suggest_upload_name(files: list[str]):
    return default_import_name(os.path.splitext(files[0])[0]) if files else gr.skip()


def use_or_import(
    studio: Studio, choice, folder_path, files, hub_id, dataset_name, camera="", held_out=0, frames=None
) -> dict[str, Any]:
    """Select the built-in sample, or import a folder / LeRobot dataset / upload / Hub dataset through
    `trainer import-data` (a LeRobot dataset is cut into clips of the num_frames set under Check)."""
    try:
        if choice == SAMPLE:
            studio.datasets.path(SAMPLE_DATA)  # built on first use
            return {
                "message": f"Using the built-in sample robot dataset (`{SAMPLE_DATA}`); it is read-only (**Import a "
                "copy to edit** makes an editable one).",
                "dataset": gr.update(choices=studio.datasets.choices(), value=SAMPLE_DATA),
            }
        gr.Info("Importing through `trainer import-data`; large datasets take a while.")
        if choice == UPLOAD:
            result = studio.datasets.import_uploads(files or [], dataset_name)
        elif choice == LEROBOT:
            result = studio.datasets.import_lerobot(folder_path, dataset_name, camera, frames, held_out or 0)
        else:
            result = studio.datasets.import_source(folder_path if choice == FOLDER else hub_id, dataset_name)
    except REFUSALS as exc:
        gr.Warning(str(exc))
        return {"message": f"Not imported: {exc}"}
    text = result.message + ("\n\n" + "\n".join(f"- {d}" for d in result.details) if result.details else "")
    return {"message": text, "dataset": gr.update(choices=studio.datasets.choices(), value=result.dataset)}


def run_check(studio: Studio, name: str, frames) -> dict[str, Any]:
    """The check-data report, by name (CHECKED): every clip, usable or not, with its problem."""
    try:
        result = studio.datasets.check(name, num_frames=int(frames or 0))
    except REFUSALS as exc:
        gr.Warning(str(exc))
        return {
            "summary": f"Cannot check {studio.datasets.paths.redact(name)}: {exc}",
            "report": EMPTY_REPORT,
            "keys": [],
            "clip": gr.update(choices=[], value=None),
        }
    keys = result.keys()
    return {
        "summary": result.summary(),
        "report": result.table(),
        "keys": keys,
        "clip": gr.update(choices=keys, value=keys[0] if keys else None),
    }


def select_row(keys: list[str], evt: gr.SelectData):
    row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    return keys[row] if 0 <= row < len(keys) else gr.skip()


def preview(studio: Studio, name: str, key: str) -> dict[str, Any]:
    """The clip's video and caption, and what the editor now holds (loaded: dataset, clip, digest of the caption)."""
    if not key or not name:
        return {"video": None, "caption": "", "loaded": None}
    try:
        path, text = studio.datasets.clip(name, key)
    except REFUSALS as exc:
        gr.Warning(str(exc))
        return {"video": None, "caption": "", "loaded": None}
    return {
        "video": str(enlarged(Path(path), studio.workspace.gradio_temp / ENLARGED_DIR)),
        "caption": text,
        "loaded": {"dataset": name, "clip": key, "digest": caption_digest(text)},
    }


def save_caption(studio: Studio, name, key, text, loaded, table, keys, frames) -> dict[str, Any]:
    """Write metas/<key>.txt and update the report row (checking again when it fixes a caption problem).

    The editor is keyed by (dataset, clip): a caption loaded for another pair is never written to this one,
    and one that changed on disk since it was loaded is not overwritten."""
    try:
        if not loaded or (loaded.get("dataset"), loaded.get("clip")) != (name, key):
            raise DatasetError(
                f"The editor does not hold the caption of {key!r} in "
                f"{studio.datasets.paths.redact(name)}; pick the clip again."
            )
        target = studio.datasets.save_caption(name, key, text, loaded=loaded.get("digest"))
    except REFUSALS as exc:
        gr.Warning(str(exc))
        return {}
    gr.Info(f"Caption of {key!r} saved to {target.parent.name}/{target.name}.")
    loaded = {**loaded, "digest": caption_digest(text.strip())}
    if key in keys and len(table) == len(keys):
        table = table.copy()
        table.loc[keys.index(key), "caption"] = text.strip()
        if str(table.loc[keys.index(key), "problem"]).startswith(("missing caption", "empty caption")):
            return {"report": run_check(studio, name, frames)["report"], "loaded": loaded}
    return {"report": table, "loaded": loaded}


def delete_clip(studio: Studio, name: str, key: str, frames) -> dict[str, Any]:
    """Remove the clip shown from its (imported) dataset, then check the dataset again (CHECKED, by name)."""
    try:
        studio.datasets.delete_clip(name, key)
    except REFUSALS as exc:
        gr.Warning(str(exc))
        return {}
    gr.Info(f"Clip {key!r} deleted from {name}.")
    return run_check(studio, name, frames)


def delete_dataset(studio: Studio, name: str, typed: str) -> dict[str, Any]:
    """Delete an imported dataset after its name was typed; refused while a run trains on it."""
    try:
        studio.datasets.delete(name, typed)
    except REFUSALS as exc:
        gr.Warning(str(exc))
        return {}
    gr.Info(f"Dataset {name!r} deleted.")
    return {"dataset": gr.update(choices=studio.datasets.choices(), value=SAMPLE_DATA), "confirm": ""}


# --- layout and wiring ------------------------------------------------------------------------------------
def _choose(studio: Studio) -> SimpleNamespace:
    gr.Markdown("### Choose a dataset")
    source = gr.Radio(sources(studio), value=SAMPLE, label="source", elem_id="data-source")
    folder = gr.Textbox(
        label="folder",
        placeholder="/path/to/dataset",
        visible=False,
        info="videos/ + metas/, captions/*.json, metadata.csv, x.mp4 + x.txt, or LeRobot",
    )
    upload = gr.File(label="files", file_count="multiple", file_types=[".zip", ".mp4", ".txt"], visible=False)
    hub = gr.Textbox(label="Hub dataset id", placeholder="nvidia/GR1-100", visible=False, info=_hub_info(studio))
    with gr.Row(visible=False) as lerobot:
        camera = gr.Textbox(
            "", label="camera", placeholder="first camera", info="observation.images.<camera>, or <camera>"
        )
        held_out = gr.Number(
            0, label="held-out episodes", info="Kept apart in <name>/held_out/: a count or a fraction."
        )
    name = gr.Textbox(label="name", visible=False, info="Imported into <workspace>/datasets/<name>/.")
    go = gr.Button("Use the built-in sample", variant="primary", elem_id="data-go")
    copy = gr.Button("Import a copy to edit", elem_id="data-sample-copy", visible=not studio.workspace.read_only)
    message = gr.Markdown(elem_id="data-message")
    return SimpleNamespace(
        source=source,
        folder=folder,
        upload=upload,
        hub=hub,
        lerobot=lerobot,
        camera=camera,
        held_out=held_out,
        name=name,
        go=go,
        copy=copy,
        message=message,
    )


def _check(studio: Studio) -> SimpleNamespace:
    gr.Markdown("### Check")
    with gr.Row(equal_height=True):
        dataset = gr.Dropdown(
            studio.datasets.choices(),
            value=SAMPLE_DATA,
            label="dataset",
            scale=3,
            allow_custom_value=True,
            elem_id="data-dataset",
        )
        num_frames = gr.Number(
            preset_values(DEFAULT_PRESET)["num_frames"],
            precision=0,
            scale=1,
            label="num_frames",
            info="Shorter clips are reported.",
        )
        check = gr.Button("Check", scale=1, elem_id="data-check")
    summary = gr.Markdown(elem_id="data-summary")
    report = gr.Dataframe(
        EMPTY_REPORT,
        interactive=False,
        wrap=True,
        max_height=320,
        elem_id="data-report",
        column_widths=["25%", "8%", "6%", "10%", "35%", "16%"],
        label="check-data report (click a row to preview it)",
    )
    return SimpleNamespace(dataset=dataset, num_frames=num_frames, check=check, summary=summary, report=report)


def _preview(studio: Studio) -> SimpleNamespace:
    gr.Markdown("### Preview and caption")
    writable = not studio.workspace.read_only
    with gr.Row(equal_height=False):
        with gr.Column(scale=2):
            clip = gr.Dropdown([], label="clip", allow_custom_value=True, elem_id="data-clip")
            caption = gr.Textbox(
                label="caption",
                lines=4,
                elem_id="data-caption",
                interactive=writable,
                info="Saved to metas/<clip>.txt of the dataset.",
            )
            with gr.Row(visible=writable):
                save = gr.Button("Save caption", elem_id="data-save")
                drop = gr.Button("Delete this clip", variant="stop", elem_id="data-delete-clip")
        video = gr.Video(
            label="preview", interactive=False, autoplay=True, loop=True, height=260, scale=2, elem_id="data-preview"
        )
    with gr.Accordion("Delete this dataset", open=False, visible=writable):
        confirm = gr.Textbox(
            label="confirm deletion",
            placeholder="type the dataset's name (after datasets/)",
            info="Deletes the imported dataset's folder; refused while a run trains on it.",
        )
        delete = gr.Button("Delete dataset", variant="stop")
    return SimpleNamespace(
        clip=clip, caption=caption, save=save, drop=drop, video=video, confirm=confirm, delete=delete
    )


def build(studio: Studio, demo: gr.Blocks) -> dict[str, Any]:
    with gr.Tab("Data", id="data"):
        with gr.Row(equal_height=False):
            with gr.Column(scale=2):
                src = _choose(studio)
            with gr.Column(scale=3):
                chk = _check(studio)
        pre = _preview(studio)
        keys = gr.State([])
        loaded = gr.State(None)  # {"dataset", "clip", "digest"} of the caption in the editor
        private = {"api_visibility": "private"}
        checked = NamedOutputs(summary=chk.summary, report=chk.report, keys=keys, clip=pre.clip)
        check = checked.wrap(partial(run_check, studio))
        shown_as = NamedOutputs(video=pre.video, caption=pre.caption, loaded=loaded)
        show, shown = shown_as.wrap(partial(preview, studio)), shown_as.components
        captions = tab_captions.build(
            studio,
            demo,
            chk.dataset,
            refresh=lambda event: event.then(check, [chk.dataset, chk.num_frames], checked.components, **private).then(
                show, [chk.dataset, pre.clip], shown, **private
            ),
        )
    sourced = NamedOutputs(
        **{name: getattr(src, name) for name in ("folder", "upload", "hub", "lerobot", "name", "go", "copy")}
    )
    src.source.change(sourced.wrap(partial(pick_source, studio)), src.source, sourced.components, **private)
    src.folder.change(suggest_name, src.folder, src.name, **private)
    src.hub.change(suggest_name, src.hub, src.name, **private)
    src.upload.upload(suggest_upload_name, src.upload, src.name, **private)
    picked = NamedOutputs(message=src.message, dataset=chk.dataset)
    src.go.click(
        picked.wrap(partial(use_or_import, studio)),
        [src.source, src.folder, src.upload, src.hub, src.name, src.camera, src.held_out, chk.num_frames],
        picked.components,
        api_name="use_dataset",
    ).then(check, [chk.dataset, chk.num_frames], checked.components, **private).then(
        show, [chk.dataset, pre.clip], shown, **private
    )
    src.copy.click(
        picked.wrap(partial(import_sample_copy, studio)), None, picked.components, api_name="import_sample"
    ).then(check, [chk.dataset, chk.num_frames], checked.components, **private).then(
        show, [chk.dataset, pre.clip], shown, **private
    )
    # The editor follows (dataset, clip): a new dataset whose first clip has the same name still reloads it.
    chk.check.click(check, [chk.dataset, chk.num_frames], checked.components, api_name="check_data").then(
        show, [chk.dataset, pre.clip], shown, **private
    )
    chk.dataset.input(check, [chk.dataset, chk.num_frames], checked.components, **private).then(
        show, [chk.dataset, pre.clip], shown, **private
    )
    chk.report.select(select_row, keys, pre.clip, **private)
    pre.clip.change(show, [chk.dataset, pre.clip], shown, api_name="preview_clip")
    saved = NamedOutputs(report=chk.report, loaded=loaded)
    pre.save.click(
        saved.wrap(partial(save_caption, studio)),
        [chk.dataset, pre.clip, pre.caption, loaded, chk.report, keys, chk.num_frames],
        saved.components,
        api_name="save_caption",
    )
    pre.drop.click(
        checked.wrap(partial(delete_clip, studio)),
        [chk.dataset, pre.clip, chk.num_frames],
        checked.components,
        api_name="delete_clip",
    ).then(show, [chk.dataset, pre.clip], shown, **private)
    deleted = NamedOutputs(dataset=chk.dataset, confirm=pre.confirm)
    pre.delete.click(
        deleted.wrap(partial(delete_dataset, studio)),
        [chk.dataset, pre.confirm],
        deleted.components,
        api_name="delete_dataset",
    )
    demo.load(lambda: gr.update(choices=studio.datasets.choices()), None, chk.dataset, **private)
    return {
        "dataset": chk.dataset,
        "num_frames": chk.num_frames,
        "prompt_prefix": captions["prompt_prefix"],
        "base_model": captions["base_model"],
    }
