"""The studio's page: four tabs, each built by its own module, wired to the Gradio-free controllers."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from studio import tab_adapters, tab_data, tab_generate, tab_train
from studio.caption_controller import CAPTION_LOG
from studio.cleanup import start_pruning
from studio.dataset_controller import IMPORT_LOG
from studio.evaluation import EVALUATE_LOG
from studio.generation_client import WORKER_LOG
from studio.workspace import Studio
from trainer.spec.embedded import sample_root

TITLE = "Cosmos LoRA Studio"
CSS = """
#gen-videos video { width: 100%; height: 320px; object-fit: contain; }  /* 64 px clips enlarged to page size */
.run-log { font-size: 12px; line-height: 1.35; white-space: pre; overflow-x: auto; max-width: 100%; margin: 0;
           padding: 8px; border-radius: 6px; background: var(--block-background-fill); }
/* 64 px clips and their filmstrips stay crisp when enlarged */
#gen-videos video, #data-preview video, #train-samples img, #adapters-samples img, #gen-variant-samples img {
    image-rendering: pixelated; }
/* sample tiles are filmstrips (5 frames wide): wide tiles, rows as tall as they need, whole captions */
#train-samples .grid-container, #adapters-samples .grid-container, #gen-variant-samples .grid-container {
    grid-template-rows: none; grid-auto-rows: auto; }
#train-samples .thumbnail-item, #adapters-samples .thumbnail-item, #gen-variant-samples .thumbnail-item {
    aspect-ratio: 3 / 1; height: auto; }
#train-samples .caption-label, #adapters-samples .caption-label { white-space: normal; max-width: 100%; }
/* the Generate column is half as wide: taller tiles keep the caption below the filmstrip, off the arms */
#gen-variant-samples .thumbnail-item { aspect-ratio: 2 / 1; }
/* Gradio keeps a 320-450 px floor under a gallery of height "auto": two rows of filmstrips left it half empty */
#train-samples .grid-wrap, #adapters-samples .grid-wrap, #gen-variant-samples .grid-wrap { min-height: 0; }
.variant-video { min-width: 180px; }
/* the memory estimates are aligned text in a half-width column: long lines wrap instead of running off the edge */
#train-memory pre, #train-memory code, #gen-memory-estimate pre, #gen-memory-estimate code {
    white-space: pre-wrap; overflow-wrap: anywhere; }
/* a plot's block is as tall as its label and chart: at a fixed height the loss curve's legend was cut off */
#loss-plot, #lr-plot, #grad-norm-plot { height: auto !important; }
#loss-plot .vega-embed, #lr-plot .vega-embed, #grad-norm-plot .vega-embed { height: 240px; }
/* Gradio 6 still writes its timer ("0.3s", "processing | 0.3/0.2s") into the outputs of an event whose
   show_progress is "hidden", such as the Train tab's live view every second; the tracker's class says so. */
.wrap.hidden[data-testid="status-tracker"] { display: none !important; }
"""


def build_app(studio: Studio) -> gr.Blocks:
    with gr.Blocks(title=TITLE) as demo:
        # No server path here: the page is public wherever the studio is.
        mode = (
            " **Read-only**: browse, compare and download; training, imports and deletes are turned off."
            if studio.workspace.read_only
            else ""
        )
        gr.Markdown(
            f"# {TITLE}\nFine-tune Cosmos Predict 2.5 with LoRA/DoRA adapters and compare them with the "
            f"base model.{mode}",
            elem_id="studio-header",
        )
        with gr.Tabs():
            data = tab_data.build(studio, demo)
            train = tab_train.build(studio, demo)
            generate = tab_generate.build(studio, demo)
            tab_adapters.build(studio, demo)
        # The dataset chosen on the Data tab is the one trained on and the one to take first frames from.
        data["dataset"].change(
            lambda d: (d, d), data["dataset"], [train["fields"]["data"], generate["dataset"]], api_visibility="private"
        )
        # Captions are proposed by the text encoder of the model trained on, when it is a real one.
        train["fields"]["model"].change(
            lambda m: m, train["fields"]["model"], data["base_model"], api_visibility="private"
        )
        data["prompt_prefix"].change(
            lambda p: p, data["prompt_prefix"], train["fields"]["prompt_prefix"], api_visibility="private"
        )
        train["fields"]["num_frames"].change(
            lambda f: f, train["fields"]["num_frames"], data["num_frames"], api_visibility="private"
        )
    return demo


def logs(studio: Studio) -> list[Path]:
    """The logs the studio's children write beside what is served (datasets/, generations/)."""
    ws = studio.workspace
    return [
        ws.datasets / IMPORT_LOG,
        ws.datasets / CAPTION_LOG,
        ws.generations / WORKER_LOG,
        ws.generations / EVALUATE_LOG,
    ]


def launch(
    studio: Studio,
    host: str = "127.0.0.1",
    port: int = 7860,
    share: bool = False,
    auth: list[tuple[str, str]] | None = None,
    max_upload_mb: float | None = None,
) -> None:
    demo = build_app(studio)
    start_pruning(studio.workspace, studio.keep_days)
    # Videos and frames shown live in the workspace and in the sample dataset (not the rest of the user cache).
    # show_error=False: an unexpected exception's text (it may hold a server path) never reaches the page; the
    # refusals the studio means to show are gr.Warning / gr.Error, which are shown anyway.
    demo.queue(default_concurrency_limit=4).launch(
        server_name=host,
        server_port=port,
        share=share,
        auth=auth,
        allowed_paths=[str(studio.workspace.root), str(sample_root())],
        # Run folders (process.log holds command lines, config.json absolute paths), adapter folders and the
        # children's logs (server paths, command lines) are read by the studio itself, never served: an adapter
        # is downloaded as its zip from exports/.
        blocked_paths=[str(studio.workspace.runs), str(studio.workspace.adapters), *map(str, logs(studio))],
        max_file_size=f"{max_upload_mb:g}mb" if max_upload_mb else None,
        theme=gr.themes.Soft(),
        css=CSS,
        ssr_mode=False,
        show_error=False,
        footer_links=["api", "gradio"],
    )
