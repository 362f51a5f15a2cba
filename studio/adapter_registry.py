"""Every adapter in a workspace, trained or imported, with its card: list, zip for download, delete, import.

Trained adapters are `<workspace>/runs/<run>/adapter/`; imported ones are `<workspace>/adapters/<name>/`. An
adapter is a folder holding the weights file; its adapter_card.json (written by the trainer) is optional.
A run's complete checkpoints are variants too (`variants()`, named `<run>@step-N`): they can be compared and
evaluated, not zipped or deleted here.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Literal

import pandas as pd

from studio.folders import Refused, Workspace
from studio.paths import PathPolicy, as_workspace, check_name, is_inside
from trainer.spec.run_folder import (
    ADAPTER_DIR,
    CARD_FILE,
    CARD_SUMMARY_KEYS,
    CHECKPOINT_LABEL,
    WEIGHTS_FILE,
    complete_checkpoints,
    read_card,
)

Source = Literal["run", "imported", "checkpoint"]
OLD_CHECKPOINT = (
    "saved before checkpoints held a loadable adapter: it can resume the run but not be rendered; "
    "compare the run's final adapter, or train on with resume to save new checkpoints"
)


@dataclass(frozen=True)
class AdapterInfo:
    name: str
    path: Path
    source: Source
    # Card fields (None when the card or the field is missing); keys as in adapter_card.json.
    base_model: str | None = None
    revision: str | None = None
    adapter: str | None = None  # the adapter type: lora or dora (the config's word for it)
    rank: int | None = None
    alpha: float | None = None
    steps: int | None = None
    dataset: str | None = None
    final_loss: float | None = None
    created: str | None = None


CARD_FIELDS = tuple(f.name for f in fields(AdapterInfo))[3:]
assert set(CARD_FIELDS) == {*CARD_SUMMARY_KEYS, "dataset"}, "AdapterInfo shows the card summary and the dataset"
TABLE_COLUMNS = [
    "name",
    "source",
    "adapter",
    "rank",
    "alpha",
    "steps",
    "final_loss",
    "dataset",
    "base_model",
    "revision",
    "created",
    "path",
]


class AdapterError(Refused):
    """A request about an adapter that cannot be carried out; the message names it and what to do."""


class AdapterRegistry:
    def __init__(self, workspace: Workspace | str | Path):
        self.ws = as_workspace(workspace)
        self.workspace = self.ws.root
        self.runs_dir = self.ws.runs
        self.imported_dir = self.ws.adapters
        self.exports_dir = self.ws.exports
        self.paths = PathPolicy(self.ws)

    def list(self) -> list[AdapterInfo]:
        """Trained adapters first, then imported ones, each group by name (a folder linked from elsewhere is left out)."""
        found = [(p, "run") for p in sorted(self.runs_dir.glob(f"*/{ADAPTER_DIR}/{WEIGHTS_FILE}"))]
        found += [(p, "imported") for p in sorted(self.imported_dir.glob(f"*/{WEIGHTS_FILE}"))]
        return [
            _read_adapter(weights.parent, source) for weights, source in found if is_inside(weights, self.workspace)
        ]

    def checkpoints(self) -> tuple[list[AdapterInfo], dict[str, str]]:
        """Every run's complete checkpoints as variants (by run, then step), and those that cannot be rendered
        by label, with the reason."""
        usable, unusable = [], {}
        for run in sorted(p for p in self.runs_dir.glob("*") if p.is_dir()):
            for folder in complete_checkpoints(run):
                if not is_inside(folder, self.workspace):
                    continue
                if (folder / WEIGHTS_FILE).is_file():
                    usable.append(_read_adapter(folder, "checkpoint"))
                else:
                    unusable[CHECKPOINT_LABEL.format(run=run.name, checkpoint=folder.name)] = OLD_CHECKPOINT
        return usable, unusable

    def variants(self) -> list[AdapterInfo]:
        """What Generate & compare and Evaluate offer beside the base model: the adapters, then the checkpoints."""
        return self.list() + self.checkpoints()[0]

    def variant(self, name: str) -> AdapterInfo:
        """The adapter or checkpoint named `name` (as variants() names it), else AdapterError saying why."""
        matches = [info for info in self.variants() if info.name == name]
        if len(matches) == 1:
            return matches[0]
        why = self.checkpoints()[1].get(name)
        if why:
            raise AdapterError(f"Checkpoint {name!r} was {why}.")
        if matches:
            raise AdapterError(f"Two adapters are named {name!r}; rename the folder adapters/{name}.")
        raise AdapterError(f"No adapter or checkpoint named {name[:80]!r} in the workspace; pick one from the list.")

    def get(self, name: str) -> AdapterInfo:
        check_name(name, "adapter")
        matches = [info for info in self.list() if info.name == name]
        if not matches:
            raise AdapterError(f"No adapter named {name!r} in the workspace; pick one from the adapters list.")
        if len(matches) > 1:
            raise AdapterError(
                f"Two adapters are named {name!r} (a run's and an imported one); rename the folder adapters/{name}."
            )
        return matches[0]

    def table(self) -> pd.DataFrame:
        rows = [{**asdict(info), "path": self.paths.show(info.path)} for info in self.list()]
        return pd.DataFrame(rows, columns=TABLE_COLUMNS)

    def zip(self, name: str) -> Path:
        """A zip of the adapter folder (entries under `<name>/`), written to <workspace>/exports/ for download."""
        info = self.get(name)
        self.exports_dir.mkdir(parents=True, exist_ok=True)
        target = self.exports_dir / f"{name}.zip"
        # Written beside the target and renamed, so a download never serves a half-written zip.
        fd, tmp = tempfile.mkstemp(dir=self.exports_dir, prefix=f".{name}.", suffix=".zip")
        os.close(fd)
        try:
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
                for file in sorted(p for p in info.path.rglob("*") if p.is_file()):
                    archive.write(file, Path(name) / file.relative_to(info.path))
            os.replace(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return target

    def delete(self, name: str, confirm: str) -> None:
        """Delete the adapter folder, only when `confirm` repeats its name (a run's checkpoints are kept)."""
        self.ws.require_writable("deleting adapters")
        info = self.get(name)
        if confirm != name:
            raise AdapterError(f"Type the adapter name {name!r} exactly to confirm deleting it.")
        shutil.rmtree(info.path)

    def import_folder(self, src: str | Path, name: str) -> AdapterInfo:
        """Copy an adapter folder (it must hold the weights file) into <workspace>/adapters/<name>/."""
        self.ws.require_writable("importing adapters")
        self.ws.require_room("importing adapters")
        src = Path(src)
        if not name or not all(ch.isalnum() or ch in "-_." for ch in name) or name in {".", ".."}:
            raise AdapterError(f"Adapter name {name!r} can only use letters, digits, '-', '_' and '.'; choose another.")
        if not (src / WEIGHTS_FILE).is_file():
            raise AdapterError(
                f"{self.paths.show(src)} holds no {WEIGHTS_FILE}; choose the adapter folder that contains it."
            )
        if any(info.name == name for info in self.list()):
            raise AdapterError(f"An adapter named {name!r} already exists; choose another name.")
        self.imported_dir.mkdir(parents=True, exist_ok=True)
        target = self.imported_dir / name
        # Copied beside the target and renamed, so a failed copy never leaves a half adapter in the list.
        staging = Path(tempfile.mkdtemp(dir=self.imported_dir, prefix=f".{name}."))
        try:
            shutil.copytree(src, staging / name)
            os.replace(staging / name, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return _read_adapter(target, "imported")

    def import_upload(self, files: list[str | Path], name: str) -> AdapterInfo:
        """Import uploaded files: one .zip of an adapter folder, or the folder's files (weights, card, README)."""
        self.ws.require_writable("importing adapters")
        self.ws.require_room("importing adapters")
        paths = [Path(f) for f in files or []]
        if not paths:
            raise AdapterError(f"Upload a .zip of an adapter folder, or its {WEIGHTS_FILE} (and {CARD_FILE}), first.")
        self.imported_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.imported_dir, prefix=".upload-") as staging:
            staging = Path(staging)
            if len(paths) == 1 and zipfile.is_zipfile(paths[0]):
                _extract_flat(paths[0], staging)
            else:
                for path in paths:
                    shutil.copyfile(path, staging / path.name)
            return self.import_folder(_weights_folder(staging), name)


def _extract_flat(archive: Path, into: Path) -> None:
    """Unpack the files of an adapter zip; an entry that would land outside `into` refuses the whole archive."""
    with zipfile.ZipFile(archive) as zf:
        members = [m for m in zf.infolist() if not m.is_dir() and not m.filename.startswith("__MACOSX/")]
        for member in members:
            target = (into / member.filename.replace("\\", "/")).resolve()
            if not target.is_relative_to(into.resolve()):
                raise AdapterError(
                    f"{archive.name} has an entry outside its folder ({member.filename}); rebuild the zip."
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst)


def _weights_folder(root: Path) -> Path:
    """The folder holding the weights file: the upload itself, or the one folder a zip wrapped it in."""
    found = sorted(p.parent for p in root.rglob(WEIGHTS_FILE))
    if len(found) > 1:
        raise AdapterError(f"The upload holds {len(found)} adapters; import them one at a time.")
    return found[0] if found else root


def _read_adapter(folder: Path, source: Source) -> AdapterInfo:
    name = {
        "run": folder.parent.name,
        "imported": folder.name,
        "checkpoint": CHECKPOINT_LABEL.format(run=folder.parent.parent.name, checkpoint=folder.name),
    }[source]
    card = read_card(folder)
    values = {key: card.get(key) for key in CARD_FIELDS}
    if isinstance(values["dataset"], dict):  # the trainer records path, clip count and digest; the table shows the path
        values["dataset"] = values["dataset"].get("path")
    return AdapterInfo(name=name, path=folder, source=source, **values)
