"""The Data tab's logic, without Gradio: choose, import, check and preview datasets, and edit captions.

A dataset is named by the value the config's `data` field takes, so the Data tab and the Train form agree:
"sample" / "sample:held_out" (the built-in robot dataset, read-only), "datasets/<name>" (imported into the
workspace, relative to it, where the trainer runs), or (only with --allow-local-folders) a server folder; see
studio.paths. Imports go through `python -m trainer import-data --json` in a child process; checks call
trainer.datasets directly (torch-free), the same functions `check-data` reports with.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from studio import launcher
from studio.folders import Workspace
from studio.paths import HUB_ID, PathPolicy, as_workspace, check_name, is_inside
from trainer.datasets import DatasetError, ItemReport, Layout, check_items, detect_layout, list_items, relative_name
from trainer.lerobot import HELD_OUT_DIR, is_lerobot
from trainer.spec.bounds import long_text_problem
from trainer.spec.embedded import SAMPLE_DATA, is_sample
from trainer.video import VideoError, read_frames

if TYPE_CHECKING:
    from studio.jobs import JobManager

SAMPLE_CHOICES = (SAMPLE_DATA, f"{SAMPLE_DATA}:held_out")
DATASETS_DIR = "datasets"  # the config value of an imported dataset is datasets/<name>, relative to the workspace
IMPORT_LOG = "import.log"  # import-data's stderr, for the operator
REPORT_COLUMNS = ["file", "frames", "fps", "resolution", "caption", "problem"]
UPLOAD_SUFFIXES = {".mp4", ".txt"}
IMPORT_TIMEOUT_S = 6 * 3600  # a Hub download of a large dataset may take long; a hung one must still end


@dataclass
class CheckResult:
    dataset: str
    path: Path
    layout: str
    reports: list[ItemReport]

    @property
    def usable(self) -> int:
        return sum(r.usable for r in self.reports)

    def summary(self) -> str:
        bad = len(self.reports) - self.usable
        clips = f"{len(self.reports)} clip" + ("" if len(self.reports) == 1 else "s")
        line = f"{clips} in {self.dataset} ({self.layout} layout): {self.usable} usable, {bad} not usable"
        return line + ("." if not bad else " (see the problem column).")

    def table(self) -> pd.DataFrame:
        """The check-data report: one row per clip, unusable ones included, in key order."""
        rows = [
            {
                "file": relative_name(r.video, self.path),
                "frames": r.frames,
                "fps": None if r.fps is None else round(r.fps, 3),
                "resolution": None if r.width is None else f"{r.width}x{r.height}",
                "caption": r.caption or "",
                "problem": r.problem or (f"ok ({r.note})" if r.note else "ok"),
            }
            for r in self.reports
        ]
        return pd.DataFrame(rows, columns=REPORT_COLUMNS)

    def keys(self) -> list[str]:
        return [r.key for r in self.reports]


@dataclass
class ImportResult:
    dataset: str  # the config value of the imported dataset: datasets/<name>
    exit_code: int
    message: str  # the import's summary line
    details: list[str] = field(default_factory=list)  # clips copied without a caption, missing files


def caption_digest(text: str) -> str:
    """What a caption editor remembers of the caption it loaded, to notice a change made since."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class DatasetController:
    def __init__(self, workspace: Workspace | str | Path, jobs: "JobManager | None" = None):
        self.ws = as_workspace(workspace)
        self.workspace = self.ws.root
        self.datasets_dir = self.ws.datasets
        self.paths = PathPolicy(self.ws)
        self.jobs = jobs  # to refuse deleting a dataset a run is training on

    # --- naming ------------------------------------------------------------------------------------
    def choices(self) -> list[str]:
        """The built-in sample splits, then every dataset imported into the workspace."""
        folders = (
            []
            if not self.datasets_dir.is_dir()
            else sorted(
                p
                for p in self.datasets_dir.iterdir()
                if p.is_dir()
                and not p.name.startswith(".")
                and is_inside(p, self.datasets_dir)
                and p.resolve() != self.datasets_dir.resolve()  # not a link out
            )
        )
        # A LeRobot import keeps its held-out episodes in <name>/held_out/, a dataset of its own.
        imported = [
            f"{DATASETS_DIR}/{p.name}{split}"
            for p in folders
            for split in ("", f"/{HELD_OUT_DIR}")
            if (p / split.lstrip("/") / "videos").is_dir()
        ]
        return [*SAMPLE_CHOICES, *imported]

    def path(self, dataset: str, write: bool = False) -> Path:
        """The folder a dataset value names, as the path policy allows it; the sample is built on first use."""
        return self.paths.dataset(dataset, write=write)

    # --- import ------------------------------------------------------------------------------------
    def import_source(self, source: str, name: str, options: tuple[str, ...] = ()) -> ImportResult:
        """Import a .zip, a Hub dataset id, the sample, or (with local folders allowed) a server folder."""
        self.ws.require_writable("importing data")
        self.ws.require_room("importing data")
        source = (source or "").strip()
        if not source:
            raise DatasetError("Give a .zip file or a Hub dataset id (owner/name) to import.")
        dest = self._destination(name)
        if is_sample(source):
            source = str(self.path(source))
        elif not HUB_ID.match(source) or Path(source).exists():
            source = str(self.paths.local_folder(source))
        else:
            self.ws.access.check_hub_dataset(source)
        return self._import(source, dest, options)

    def import_lerobot(
        self, folder: str, name: str, camera: str = "", num_frames: int | None = None, held_out: float = 0
    ) -> ImportResult:
        """Import one camera of a local LeRobot dataset as num_frames-frame clips, holding out whole episodes."""
        self.ws.require_writable("importing data")
        self.ws.require_room("importing data")
        path = self.paths.local_folder((folder or "").strip())
        if not (folder or "").strip() or not is_lerobot(path):
            raise DatasetError(
                f"{self.paths.show(path) if (folder or '').strip() else 'No folder given'}: not a "
                "LeRobot dataset folder (one with meta/info.json); give the folder that holds meta/."
            )
        options = [
            *(["--camera", camera.strip()] if (camera or "").strip() else []),
            *(["--num-frames", str(int(num_frames))] if num_frames else []),
            *(["--held-out-episodes", f"{held_out:g}"] if held_out else []),
        ]
        return self.import_source(str(path), name, tuple(options))

    def _import(self, source: str, dest: Path, options: tuple[str, ...] = ()) -> ImportResult:
        self.datasets_dir.mkdir(parents=True, exist_ok=True)
        room = self.ws.room()  # a .zip is refused while it unpacks past the quota, nothing left behind
        bound = [] if room is None else ["--max-unpacked-gb", f"{room / 2**30:.6f}"]
        argv = launcher.trainer_command("import-data", ["--json", "--to", str(dest), *bound, *options], [source])
        try:
            done = launcher.run(argv, self.workspace, self.datasets_dir / IMPORT_LOG, IMPORT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise DatasetError(
                f"The import took longer than {IMPORT_TIMEOUT_S // 3600} h and was stopped; import a smaller dataset."
            ) from None
        except OSError as exc:
            raise DatasetError(
                f"import-data could not be started ({exc.strerror}); check the Python environment."
            ) from None
        try:
            answer = json.loads(done.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise DatasetError(
                f"import-data exited with code {done.returncode} without a result; "
                f"datasets/{IMPORT_LOG} has its output."
            ) from None
        if "error" in answer:
            raise DatasetError(self.paths.redact(answer["error"]))
        if "message" in answer:  # a LeRobot import: its own report lines
            return ImportResult(
                f"{DATASETS_DIR}/{dest.name}",
                answer["exit_code"],
                self.paths.redact(answer["message"]),
                [self.paths.redact(line).strip() for line in answer["details"] if line.startswith("  ")],
            )
        clips = f"{answer['clips']} clip" + ("" if answer["clips"] == 1 else "s")
        message = (
            f"Imported {clips} ({answer['layout']} layout) into {DATASETS_DIR}/{dest.name}: "
            f"{answer['copied']} copied, {answer['clips'] - answer['copied']} already there."
        )
        details = [f"{self.paths.show(path)}: not imported, the file is missing" for path in answer["missing_files"]]
        details += [self.paths.redact(line) for line in answer["uncaptioned"]]
        return ImportResult(f"{DATASETS_DIR}/{dest.name}", answer["exit_code"], message, details)

    def import_uploads(self, files: list[str], name: str) -> ImportResult:
        """Import uploaded files: one .zip of a dataset, or a set of .mp4 clips with same-named .txt captions."""
        self.ws.require_writable("importing data")
        self.ws.require_room("importing data")
        paths = [Path(f) for f in files or []]
        if not paths:
            raise DatasetError("Upload a .zip of a dataset, or .mp4 clips with their .txt captions, first.")
        zips = [p for p in paths if p.suffix.lower() == ".zip"]
        if zips:
            if len(paths) > 1:
                raise DatasetError("Upload either one .zip or a set of .mp4 and .txt files, not both.")
            return self._import(str(zips[0]), self._destination(name))
        other = sorted({p.name for p in paths if p.suffix.lower() not in UPLOAD_SUFFIXES})
        if other:
            raise DatasetError(f"Only .mp4 clips and .txt captions can be uploaded (got {', '.join(other)}).")
        if not any(p.suffix.lower() == ".mp4" for p in paths):
            raise DatasetError("The upload holds no .mp4 clip; add the videos with their .txt captions.")
        dest = self._destination(name)
        # Side by side in one folder, the upload is the "flat" layout import-data accepts (x.mp4 + x.txt).
        self.datasets_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.datasets_dir, prefix=".upload-") as staging:
            for path in paths:
                shutil.copyfile(path, Path(staging) / _upload_name(path))
            return self._import(staging, dest)

    def _destination(self, name: str) -> Path:
        name = (name or "").strip()
        if not name or name in {".", ".."} or not all(ch.isalnum() or ch in "-_." for ch in name):
            raise DatasetError(f"Dataset name {name!r} can only use letters, digits, '-', '_' and '.'; choose another.")
        return self.datasets_dir / check_name(name, "dataset name")

    def delete(self, dataset: str, confirm: str) -> None:
        """Delete an imported dataset, only when `confirm` repeats its name and no run is training on it."""
        self.ws.require_writable("deleting a dataset")
        root = self.path(dataset, write=True)
        name = check_name(root.name, "dataset name")
        if root.parent != self.datasets_dir or not root.is_dir():
            raise DatasetError(f"No dataset {dataset!r} in the workspace; pick one from the list.")
        if (confirm or "").strip() != name:
            raise DatasetError(f"Type the dataset name {name!r} exactly to confirm deleting it.")
        self._refuse_if_training_on(root, f"{DATASETS_DIR}/{name}", "deleting it")
        shutil.rmtree(root)

    def delete_clip(self, dataset: str, key: str) -> None:
        """Remove one clip (its video and caption) from an imported dataset; refused while a run trains on it."""
        self.ws.require_writable("deleting clips")
        key = check_name(key, "clip")
        root = self.path(dataset, write=True)
        if key not in {item.key for item in self._items(root)}:
            raise DatasetError(f"{dataset} has no clip {key!r}; pick one from the report table.")
        self._refuse_if_training_on(root, dataset, "changing its clips")
        for path in (root / "videos" / f"{key}.mp4", root / "metas" / f"{key}.txt"):
            self.paths.member(path, root, "clip").unlink(missing_ok=True)

    def _refuse_if_training_on(self, root: Path, dataset: str, action: str) -> None:
        job = self.jobs.current() if self.jobs else None
        if job is not None and self.jobs.uses_dataset(job.name, root):
            raise DatasetError(f"Run {job.name!r} is training on {dataset}; stop it before {action}.")

    # --- check and preview -------------------------------------------------------------------------
    def check(
        self, dataset: str, num_frames: int | None = None, height: int | None = None, width: int | None = None
    ) -> CheckResult:
        """Decode every clip and report per clip whether it can be trained on (bad ones are listed, not hidden)."""
        root = self.path(dataset)
        items = self._items(root)
        try:
            layout = detect_layout(root)
        except DatasetError as exc:
            raise DatasetError(self.paths.redact(str(exc))) from None
        for item in items:
            self.paths.member(item.video, root, "clip")
        reports = check_items(items, num_frames or None, height or None, width or None)
        return CheckResult(dataset, root, layout.value, reports)

    def clips(self, dataset: str) -> list[str]:
        """The clip keys of a dataset, without decoding any clip."""
        return [item.key for item in self._items(self.path(dataset))]

    def clip(self, dataset: str, key: str) -> tuple[Path, str]:
        """A clip's video file and its caption ("" when it has none)."""
        root = self.path(dataset)
        items = {item.key: item for item in self._items(root)}
        if key not in items:
            raise DatasetError(f"{dataset} has no clip {key!r}; pick one from the report table.")
        return self.paths.member(items[key].video, root, "clip"), items[key].caption or ""

    def _items(self, root: Path):
        try:
            return list_items(root)
        except DatasetError as exc:
            raise DatasetError(self.paths.redact(str(exc))) from None

    def frame_image(self, dataset: str, key: str, index: int, out_dir: str | Path) -> Path:
        """Frame `index` of a clip saved as a PNG in out_dir (an initial frame for generation)."""
        from PIL import Image

        video, _ = self.clip(dataset, key)
        try:
            frame = read_frames(video, max(int(index), 0), 1)[0]
        except VideoError as exc:
            raise DatasetError(self.paths.redact(str(exc))) from None
        out = Path(out_dir) / f"{check_name(key, 'clip')}-frame{int(index):03d}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(frame).save(out)
        return out

    def save_caption(self, dataset: str, key: str, caption: str, loaded: str | None = None) -> Path:
        """Write a clip's caption to metas/<key>.txt, atomically; only datasets imported into the workspace.

        `loaded` is the caption_digest of the caption the editor showed: when the file changed since, nothing
        is written (another tab or person saved in between)."""
        self.ws.require_writable("editing captions")
        key = check_name(key, "clip")
        caption = (caption or "").strip()
        if not caption:
            raise DatasetError(f"The caption of {key!r} is empty; write what happens in the clip.")
        if long_text_problem(caption):  # it is a prompt the model is trained on
            raise DatasetError(f"The caption of {key!r}: {long_text_problem(caption)}.")
        root = self.path(dataset, write=True)
        try:
            layout = detect_layout(root)
        except DatasetError as exc:
            raise DatasetError(self.paths.redact(str(exc))) from None
        if layout is not Layout.CANONICAL:
            raise DatasetError(
                f"{dataset} is in the {layout.value} layout; import it to get editable metas/*.txt captions."
            )
        if key not in {item.key for item in self._items(root)}:
            raise DatasetError(f"{dataset} has no clip {key!r}; pick one from the report table.")
        target = self.paths.member(root / "metas" / f"{key}.txt", root, "caption")
        if loaded is not None and caption_digest(_read_caption(target)) != loaded:
            raise DatasetError(
                f"The caption of {key!r} in {dataset} changed since it was loaded; reload the clip and edit it again."
            )
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{key}.", suffix=".txt")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(caption + "\n")
            os.replace(tmp, target)  # a reader (or a training run listing captions) never sees half a caption
        finally:
            Path(tmp).unlink(missing_ok=True)
        return target


def _read_caption(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


def default_import_name(source: str) -> str:
    """A dataset name from what is imported: the folder name, the zip's stem, or the Hub id's name."""
    source = (source or "").strip().rstrip("/")
    if is_sample(source):
        return "sample-robot"
    stem = Path(source).stem if source.lower().endswith(".zip") else Path(source).name
    clean = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in stem).strip(".-")
    return clean or "dataset"


def _upload_name(path: Path) -> str:
    # Browsers upload by base name; Gradio keeps it. Lower-case the suffix so x.MP4 pairs with x.txt.
    return path.stem + path.suffix.lower()
