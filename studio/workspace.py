"""The studio's workspace: one folder holding everything the studio makes, so a restart finds it all again.

<workspace>/runs/          training runs (trainer.spec.run_folder describes a run folder)
<workspace>/datasets/      datasets imported through `trainer import-data` (videos/ + metas/)
<workspace>/adapters/      adapter folders imported from elsewhere
<workspace>/generations/   one folder per comparison: <variant>.mp4, compare.mp4, compare.json
<workspace>/exports/       adapter zips made for download
<workspace>/presets/       Train form presets saved under a name (studio.form_sources)
<workspace>/.gradio/       Gradio's upload and cache folder (GRADIO_TEMP_DIR)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from studio.access import Access
from studio.folders import Workspace

if TYPE_CHECKING:
    from studio.adapter_registry import AdapterRegistry
    from studio.caption_controller import CaptionController
    from studio.dataset_controller import DatasetController
    from studio.evaluation import Evaluator
    from studio.form_sources import FormSources
    from studio.generation_client import GenerationClient
    from studio.jobs import JobManager
    from studio.run_queue import RunQueue
    from studio.run_view import RunMonitor

DEFAULT_WORKSPACE = "workspace"
SPACE_STORAGE = Path("/data")  # a Hugging Face Space's persistent storage, when the Space has it


def default_workspace(environ: dict[str, str] | None = None, storage: Path = SPACE_STORAGE) -> str:
    """./workspace; on a Hugging Face Space (SPACE_ID set) with persistent storage mounted, <storage>/workspace,
    since everything else on a Space's disk is lost when it restarts. There the Hub and latent caches default
    to the persistent storage too (so the 2B model is downloaded once), unless set already."""
    environ = os.environ if environ is None else environ
    if not environ.get("SPACE_ID") or not (storage.is_dir() and os.access(storage, os.W_OK)):
        return DEFAULT_WORKSPACE
    environ.setdefault("HF_HOME", str(storage / ".huggingface"))
    environ.setdefault("COSMOS_STUDIO_CACHE", str(storage / ".cache" / "cosmos-lora-studio"))
    return str(storage / "workspace")


def prepare(
    path: str | Path = DEFAULT_WORKSPACE,
    read_only: bool = False,
    allow_local_folders: bool = False,
    max_gb: float | None = None,
    access: Access = Access(),
) -> Workspace:
    """Create the workspace folders and point Gradio's temp folder into it.

    Call before importing gradio: some gradio modules read GRADIO_TEMP_DIR once, at import time.
    """
    max_bytes = int(max_gb * 2**30) if max_gb else None
    ws = Workspace(Path(path).expanduser().resolve(), read_only, allow_local_folders, max_bytes, access)
    for folder in (ws.runs, ws.datasets, ws.adapters, ws.generations, ws.exports, ws.gradio_temp):
        folder.mkdir(parents=True, exist_ok=True)
    os.environ["GRADIO_TEMP_DIR"] = str(ws.gradio_temp)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline by default: no usage pings
    return ws


@dataclass
class Studio:
    """The controllers of one workspace, shared by every tab and browser session."""

    workspace: Workspace
    jobs: "JobManager"
    monitor: "RunMonitor"
    datasets: "DatasetController"
    adapters: "AdapterRegistry"
    generation: "GenerationClient"
    keep_days: float = 0.0  # generations, uploads and exports older than this are pruned; 0 keeps all
    queue: "RunQueue" = None  # None: one without a watcher, made from `jobs` and `generation`
    sources: "FormSources" = None  # presets and past runs for the Train form
    evaluation: "Evaluator | None" = None  # made from the adapters and generation when not given
    captions: "CaptionController | None" = None  # made from the datasets when not given

    def __post_init__(self) -> None:
        from studio.caption_controller import CaptionController
        from studio.evaluation import Evaluator
        from studio.form_sources import FormSources
        from studio.run_queue import RunQueue

        self.evaluation = self.evaluation or Evaluator(self.adapters, self.generation)
        if self.captions is None and self.datasets is not None:
            self.captions = CaptionController(self.datasets, self.generation)
        self.queue = self.queue or RunQueue(self.jobs, self.generation.device)  # one owner of the device
        self.sources = self.sources or FormSources(self.workspace)

    def close(self) -> None:
        self.queue.close()
        self.evaluation.close()  # its child would keep the GPU with no one to read its scores
        if self.captions is not None:
            self.captions.close()
        self.generation.close()


def open_studio(
    path: str | Path = DEFAULT_WORKSPACE,
    read_only: bool = False,
    allow_local_folders: bool = False,
    max_gb: float | None = None,
    access: Access = Access(),
) -> Studio:
    """Prepare the workspace and its controllers (re-attaching to a run that is still training)."""
    from studio.adapter_registry import AdapterRegistry
    from studio.dataset_controller import DatasetController
    from studio.generation_client import GenerationClient
    from studio.jobs import JobManager
    from studio.run_view import RunMonitor

    ws = prepare(path, read_only, allow_local_folders, max_gb, access)
    jobs = JobManager(ws)
    studio = Studio(
        ws, jobs, RunMonitor(jobs), DatasetController(ws, jobs), AdapterRegistry(ws), GenerationClient(ws, jobs)
    )
    if not read_only:  # the queue left by the last studio process (if any) starts again from here
        studio.queue.watch()
    return studio
