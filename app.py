"""Cosmos LoRA Studio: `python app.py` serves the studio on http://127.0.0.1:7860.

The studio process never imports torch: training and generation run in child processes. The embedded tiny
model is the default, so it works offline with nothing downloaded.
"""

from __future__ import annotations

import argparse
import atexit
import os

from studio.workspace import default_workspace, open_studio


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # GRADIO_SERVER_NAME/PORT are how hosted platforms (Hugging Face Spaces, the Dockerfile) say where to listen.
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="address to listen on (0.0.0.0 for every interface); default 127.0.0.1")  # fmt: skip
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--share", action="store_true", help="also serve through a public gradio.live link")
    parser.add_argument("--workspace", default=default_workspace(),
                        help="folder for runs, datasets, adapters, generations and exports; default ./workspace, "
                             "or /data/workspace on a Hugging Face Space with persistent storage")  # fmt: skip
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    studio = open_studio(args.workspace)  # before gradio is imported: it sets GRADIO_TEMP_DIR
    atexit.register(studio.close)  # the generation worker; a training run keeps going and is re-attached
    from studio.ui import launch

    launch(studio, args.host, args.port, args.share)


if __name__ == "__main__":
    main()
