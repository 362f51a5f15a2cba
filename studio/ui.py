"""The studio's page: four tabs, each built by its own module, wired to the Gradio-free controllers."""

from __future__ import annotations

import gradio as gr

from studio import tab_adapters, tab_data, tab_generate, tab_train
from studio.workspace import Studio
from trainer.user_cache import cache_root

TITLE = "Cosmos LoRA Studio"
CSS = """
#gen-videos video { max-height: 320px; }
.run-log { font-size: 12px; line-height: 1.35; white-space: pre; overflow-x: auto; max-width: 100%; margin: 0;
           padding: 8px; border-radius: 6px; background: var(--block-background-fill); }
#gen-videos video, #data-preview video { image-rendering: pixelated; }  /* 64 px clips stay crisp when enlarged */
.variant-video { min-width: 180px; }
"""


def build_app(studio: Studio) -> gr.Blocks:
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(f"# {TITLE}\nFine-tune Cosmos Predict 2.5 with LoRA/DoRA adapters and compare them with the "
                    f"base model. Workspace: `{studio.workspace.root}`")  # fmt: skip
        with gr.Tabs():
            data = tab_data.build(studio, demo)
            train = tab_train.build(studio, demo)
            generate = tab_generate.build(studio, demo)
            tab_adapters.build(studio, demo)
        # The dataset chosen on the Data tab is the one trained on and the one to take first frames from.
        data["dataset"].change(lambda d: (d, d), data["dataset"], [train["fields"]["data"], generate["dataset"]],
                               api_visibility="private")  # fmt: skip
        train["fields"]["num_frames"].change(lambda f: f, train["fields"]["num_frames"], data["num_frames"],
                                             api_visibility="private")  # fmt: skip
    return demo


def launch(studio: Studio, host: str = "127.0.0.1", port: int = 7860, share: bool = False) -> None:
    demo = build_app(studio)
    # Videos and frames shown live in the workspace and in the cache that holds the sample dataset.
    demo.queue(default_concurrency_limit=4).launch(
        server_name=host, server_port=port, share=share, allowed_paths=[str(studio.workspace.root), str(cache_root())],
        theme=gr.themes.Soft(), css=CSS, ssr_mode=False, show_error=True, footer_links=["api", "gradio"],
    )  # fmt: skip
