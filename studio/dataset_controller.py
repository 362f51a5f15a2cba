"""The Data tab's logic, without Gradio: choose, import, check and preview datasets, and edit captions.

A dataset is named by the value the config's `data` field takes, so the Data tab and the Train form agree:
"sample" / "sample:held_out" (the built-in robot dataset, read-only), "datasets/<name>" (imported into the
workspace, relative to it, where the trainer runs), or any other folder path. Imports go through
`python -m trainer import-data` in a child process; checks call trainer.datasets directly (torch-free), the
same functions `check-data` reports with.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from trainer.tinyworld.builtin import SAMPLE_DATA, is_sample, resolve_data
from trainer.datasets import DatasetError, ItemReport, Layout, check_items, detect_layout, list_items, relative_name
from trainer.lerobot import HELD_OUT_DIR, is_lerobot
from trainer.video import VideoError, read_frames

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_CHOICES = (SAMPLE_DATA, f"{SAMPLE_DATA}:held_out")
DATASETS_DIR = "datasets"
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


class DatasetController:
    def __init__(self, workspace: str | Path):
        self.workspace = Path(workspace).resolve()
        self.datasets_dir = self.workspace / DATASETS_DIR

    # --- naming ------------------------------------------------------------------------------------
    def choices(self) -> list[str]:
        """The built-in sample splits, then every dataset imported into the workspace."""
        folders = [] if not self.datasets_dir.is_dir() else sorted(
            p for p in self.datasets_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
        )  # fmt: skip
        # A LeRobot import keeps its held-out episodes in <name>/held_out/, a dataset of its own.
        imported = [f"{DATASETS_DIR}/{p.name}{split}" for p in folders for split in ("", f"/{HELD_OUT_DIR}")
                    if (p / split.lstrip("/") / "videos").is_dir()]  # fmt: skip
        return [*SAMPLE_CHOICES, *imported]

    def path(self, dataset: str) -> Path:
        """The folder a dataset value names; the sample is generated on first use (a few seconds)."""
        dataset = (dataset or "").strip()
        if not dataset:
            raise DatasetError("No dataset chosen; pick the sample or import one first.")
        if is_sample(dataset):
            try:
                return resolve_data(dataset)
            except ValueError as exc:
                raise DatasetError(str(exc)) from None
        path = Path(dataset).expanduser()
        return path if path.is_absolute() else self.workspace / path

    # --- import ------------------------------------------------------------------------------------
    def import_source(self, source: str, name: str, options: tuple[str, ...] = ()) -> ImportResult:
        """Import a folder, a .zip, a Hub dataset id or the sample into <workspace>/datasets/<name>."""
        source = (source or "").strip()
        if not source:
            raise DatasetError("Give a folder, a .zip file or a Hub dataset id (owner/name) to import.")
        dest = self._destination(name)
        if is_sample(source):
            source = str(self.path(source))
        self.datasets_dir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "trainer", "import-data", source, "--to", str(dest), *options]
        path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
        env = {**os.environ, "PYTHONPATH": path}
        try:
            done = subprocess.run(argv, cwd=self.workspace, env=env, capture_output=True, text=True,
                                  timeout=IMPORT_TIMEOUT_S)  # fmt: skip
        except subprocess.TimeoutExpired:
            raise DatasetError(f"Importing {source} took longer than {IMPORT_TIMEOUT_S // 3600} h and was stopped; "
                            "import a smaller dataset or a local copy.") from None  # fmt: skip
        if done.returncode not in (0, 1) or not done.stdout.startswith("Imported"):
            why = _last_line(done.stderr) or f"import-data exited with code {done.returncode}"
            raise DatasetError(why.removeprefix("import-data: "))
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        details = [line.strip() for line in lines[1:] if line.startswith("  ")]
        return ImportResult(f"{DATASETS_DIR}/{dest.name}", done.returncode, lines[0], details)

    def import_lerobot(self, folder: str, name: str, camera: str = "", num_frames: int | None = None,
                       held_out: float = 0) -> ImportResult:  # fmt: skip
        """Import one camera of a local LeRobot dataset as num_frames-frame clips, holding out whole episodes."""
        folder = (folder or "").strip()
        if not is_lerobot(Path(folder).expanduser()):
            raise DatasetError(f"{folder or 'No folder given'}: not a LeRobot dataset folder (one with "
                               "meta/info.json); give the folder that holds meta/.")  # fmt: skip
        options = [*(["--camera", camera.strip()] if (camera or "").strip() else []),
                   *(["--num-frames", str(int(num_frames))] if num_frames else []),
                   *(["--held-out-episodes", f"{held_out:g}"] if held_out else [])]  # fmt: skip
        return self.import_source(folder, name, tuple(options))

    def import_uploads(self, files: list[str], name: str) -> ImportResult:
        """Import uploaded files: one .zip of a dataset, or a set of .mp4 clips with same-named .txt captions."""
        paths = [Path(f) for f in files or []]
        if not paths:
            raise DatasetError("Upload a .zip of a dataset, or .mp4 clips with their .txt captions, first.")
        zips = [p for p in paths if p.suffix.lower() == ".zip"]
        if zips:
            if len(paths) > 1:
                raise DatasetError("Upload either one .zip or a set of .mp4 and .txt files, not both.")
            return self.import_source(str(zips[0]), name)
        other = sorted({p.name for p in paths if p.suffix.lower() not in UPLOAD_SUFFIXES})
        if other:
            raise DatasetError(f"Only .mp4 clips and .txt captions can be uploaded (got {', '.join(other)}).")
        if not any(p.suffix.lower() == ".mp4" for p in paths):
            raise DatasetError("The upload holds no .mp4 clip; add the videos with their .txt captions.")
        # Side by side in one folder, the upload is the "flat" layout import-data accepts (x.mp4 + x.txt).
        self.datasets_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.datasets_dir, prefix=".upload-") as staging:
            for path in paths:
                shutil.copyfile(path, Path(staging) / _upload_name(path))
            return self.import_source(staging, name)

    def _destination(self, name: str) -> Path:
        name = (name or "").strip()
        if not name or name in {".", ".."} or not all(ch.isalnum() or ch in "-_." for ch in name):
            raise DatasetError(f"Dataset name {name!r} can only use letters, digits, '-', '_' and '.'; choose another.")
        return self.datasets_dir / name

    # --- check and preview -------------------------------------------------------------------------
    def check(self, dataset: str, num_frames: int | None = None, height: int | None = None,
              width: int | None = None) -> CheckResult:  # fmt: skip
        """Decode every clip and report per clip whether it can be trained on (bad ones are listed, not hidden)."""
        root = self.path(dataset)
        try:
            layout = detect_layout(root)
            items = list_items(root)
        except DatasetError as exc:
            raise DatasetError(str(exc)) from None
        reports = check_items(items, num_frames or None, height or None, width or None)
        return CheckResult(dataset, root, layout.value, reports)

    def clips(self, dataset: str) -> list[str]:
        """The clip keys of a dataset, without decoding any clip."""
        try:
            return [item.key for item in list_items(self.path(dataset))]
        except DatasetError as exc:
            raise DatasetError(str(exc)) from None

    def clip(self, dataset: str, key: str) -> tuple[Path, str]:
        """A clip's video file and its caption ("" when it has none)."""
        root = self.path(dataset)
        try:
            items = {item.key: item for item in list_items(root)}
        except DatasetError as exc:
            raise DatasetError(str(exc)) from None
        if key not in items:
            raise DatasetError(f"{dataset} has no clip {key!r}; pick one from the report table.")
        return items[key].video, items[key].caption or ""

    def frame_image(self, dataset: str, key: str, index: int, out_dir: str | Path) -> Path:
        """Frame `index` of a clip saved as a PNG in out_dir (an initial frame for generation)."""
        from PIL import Image

        video, _ = self.clip(dataset, key)
        try:
            frame = read_frames(video, max(int(index), 0), 1)[0]
        except VideoError as exc:
            raise DatasetError(str(exc)) from None
        out = Path(out_dir) / f"{key}-frame{int(index):03d}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(frame).save(out)
        return out

    def save_caption(self, dataset: str, key: str, caption: str) -> Path:
        """Write a clip's caption to metas/<key>.txt, atomically; only datasets in the workspace are editable."""
        if is_sample(dataset):
            raise DatasetError("The built-in sample is read-only; import it into the workspace to edit its captions.")
        caption = (caption or "").strip()
        if not caption:
            raise DatasetError(f"The caption of {key!r} is empty; write what happens in the clip.")
        root = self.path(dataset)
        try:
            layout = detect_layout(root)
        except DatasetError as exc:
            raise DatasetError(str(exc)) from None
        if layout is not Layout.CANONICAL:
            raise DatasetError(f"{dataset} is in the {layout.value} layout; import it to get editable "
                            "metas/*.txt captions.")
        if not (root / "videos" / f"{key}.mp4").is_file():
            raise DatasetError(f"{dataset} has no clip {key!r}; pick one from the report table.")
        target = root / "metas" / f"{key}.txt"
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{key}.", suffix=".txt")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(caption + "\n")
            os.replace(tmp, target)  # a reader (or a training run listing captions) never sees half a caption
        finally:
            Path(tmp).unlink(missing_ok=True)
        return target


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


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""
