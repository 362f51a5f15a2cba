"""Importing a dataset into the canonical videos/ + metas/ layout: from a folder, a .zip or a Hub dataset id.

`import_dataset` copies every clip byte for byte (videos/<key>.mp4) with its caption as trained on, prefix
included (metas/<key>.txt). Nothing already in the destination is ever overwritten: it must be missing, empty,
or a canonical dataset, and a clip whose file name it already uses for different content stops the import
before anything is written. `python -m trainer import-data` is the command line over this module.
"""

from __future__ import annotations

import contextlib
import filecmp
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from trainer.datasets import DatasetError, Item, Layout, detect_layout, list_items

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
HUB_FILES = ["*.mp4", "*.MP4", "*.txt", "*.json", "*.csv"]  # a dataset repo may also hold large unrelated files
# Videos are compressed already: a dataset's zip unpacks to about its own size (captions a few times theirs). An
# archive unpacking to far more than it weighs (2 MB of zeros to 2 GiB) is no dataset and is refused, whatever
# room there is; below RATIO_FLOOR bytes the ratio is not checked (a few small captions may compress well).
MAX_RATIO = 50
RATIO_FLOOR = 16 * 2**20
CHUNK = 2**20


@dataclass(frozen=True)
class UnpackBounds:
    """What one archive may unpack to, checked while extracting (an archive's own sizes may lie)."""

    max_bytes: int | None = None  # None: no bound but the ratio's
    max_files: int = 100_000


class ImportRefused(Exception):
    """Why the import stopped, in one sentence, with the exit code it ends in (1: the work failed; 2: bad input)."""

    def __init__(self, message: str, exit_code: int):
        self.exit_code = exit_code
        super().__init__(message)


@dataclass
class ImportReport:
    """What an import did: the clips planned, how many were newly written, and what could not come along."""

    source: str
    destination: str
    layout: str
    clips: int
    copied: int
    missing_files: list[str] = field(default_factory=list)  # named by metadata.csv but not there
    uncaptioned: list[str] = field(default_factory=list)  # "videos/<key>.mp4: why it has no caption"

    @property
    def complete(self) -> bool:
        return not self.missing_files and not self.uncaptioned


def import_dataset(
    source: str,
    dest: Path,
    caption_variant: str = "long",
    prompt_prefix: str = "",
    bounds: UnpackBounds = UnpackBounds(),
) -> ImportReport:
    """Import SOURCE into `dest`; raises ImportRefused (or DatasetError / OSError) with the reason."""
    dest = Path(dest)
    _check_destination(dest)
    with _opened_source(source, dest, bounds) as (root, owned):
        _check_not_inside(dest, root, source)
        items = list_items(root, caption_variant, prompt_prefix)
        if not items:
            raise ImportRefused(f"{source} holds no .mp4 clips; nothing to import.", 1)
        layout = detect_layout(root)
        absent = [item for item in items if not item.video.is_file()]
        plan = _plan([item for item in items if item.video.is_file()], dest)
        copied = _transfer(plan, dest, move=owned)
    return ImportReport(
        source=source,
        destination=str(dest),
        layout=layout.value,
        clips=len(plan),
        copied=copied,
        missing_files=[str(item.video) for item in absent],
        uncaptioned=[f"videos/{item.key}.mp4: {item.caption_problem}" for item, _, caption in plan if caption is None],
    )


# --- where the data comes from ---------------------------------------------------------------------
@contextlib.contextmanager
def _opened_source(source: str, dest: Path, bounds: UnpackBounds) -> Iterator[tuple[Path, bool]]:
    """The dataset folder SOURCE names, and whether it is a temporary copy whose files may be moved."""
    path = Path(source)
    if path.is_dir():
        yield path, False
    elif path.is_file():
        if not zipfile.is_zipfile(path):
            raise ImportRefused(f"{path} is a file but not a .zip archive; pass a folder, a .zip or a Hub id.", 2)
        dest.parent.mkdir(parents=True, exist_ok=True)
        # Unpacked next to DIR: on DIR's file system the clips are then moved in, not copied a second time.
        with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}.unzip-") as unpacked:
            _extract_zip(path, Path(unpacked), bounds)
            yield _dataset_root(Path(unpacked)), True
    elif HUB_ID.match(source):
        yield _download(source), False
    else:
        raise ImportRefused(f"{source} is not a folder, a .zip file or a Hub dataset id (owner/name).", 2)


def _extract_zip(archive: Path, into: Path, bounds: UnpackBounds = UnpackBounds()) -> None:
    """Unpack every member below `into`, refusing the whole archive if any entry points elsewhere (zip-slip) or
    it unpacks to more than `bounds` allow (the caller removes `into`: nothing is left behind)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.infolist() if not m.is_dir() and not m.filename.startswith("__MACOSX/")]
            if len(members) > bounds.max_files:
                raise ImportRefused(
                    f"{archive.name} holds {len(members)} files, more than the {bounds.max_files} one import may "
                    "hold; nothing was imported: split it into smaller datasets.",
                    2,
                )
            unsafe = [m.filename for m in members if _leaves_folder(m.filename)]
            if unsafe:
                raise ImportRefused(
                    f"{archive} has entries that would be written outside the folder it unpacks to "
                    f"({', '.join(unsafe[:3])}); nothing was extracted: rebuild the archive with relative paths.",
                    2,
                )
            base = into.resolve()
            meter = _UnpackMeter(archive, bounds)
            meter.add(sum(m.file_size for m in members))  # what the archive says, refused before any write
            meter.written = 0
            for member in members:
                target = (into / member.filename.replace("\\", "/")).resolve()  # zips made on Windows use "\\"
                if not target.is_relative_to(base):  # belt and braces: the check above should have caught it
                    raise ImportRefused(f"{archive}: entry {member.filename} leaves the unpack folder.", 2)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, target.open("wb") as dst:
                    while chunk := src.read(CHUNK):  # counted as written: the sizes in the archive may lie
                        meter.add(len(chunk))
                        dst.write(chunk)
    except zipfile.BadZipFile as exc:
        raise ImportRefused(f"{archive} is not a readable .zip ({exc}); re-create the archive.", 2) from None


class _UnpackMeter:
    """Counts the bytes an archive unpacks to and stops at its bounds with one sentence."""

    def __init__(self, archive: Path, bounds: UnpackBounds):
        self.archive, self.bounds, self.written = archive, bounds, 0
        self.packed = max(archive.stat().st_size, 1)

    def add(self, count: int) -> None:
        self.written += count
        limit = self.bounds.max_bytes
        if limit is not None and self.written > limit:
            raise ImportRefused(
                f"{self.archive.name} unpacks to more than {_size(limit)}, the most this import may take; nothing "
                "was imported: import a smaller dataset, or free space in the workspace.",
                2,
            )
        if self.written > max(RATIO_FLOOR, MAX_RATIO * self.packed):
            raise ImportRefused(
                f"{self.archive.name} unpacks to more than {MAX_RATIO} times its {_size(self.packed)}, which no "
                "dataset of videos does; nothing was imported: zip the .mp4 clips and .txt captions themselves.",
                2,
            )


def _size(count: int) -> str:
    if count >= 2**30:
        return f"{count / 2**30:.2f} GB"
    return f"{count / 2**20:.1f} MB" if count >= 2**20 else f"{count / 2**10:.0f} KB"


def _leaves_folder(name: str) -> bool:
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return name.startswith(("/", "\\")) or ".." in parts or bool(parts and ":" in parts[0])  # "C:" drives


def _dataset_root(folder: Path) -> Path:
    """The unpacked folder, or the one folder it holds (archives usually wrap the dataset in its own folder)."""
    try:
        detect_layout(folder)
        return folder
    except DatasetError:
        entries = [e for e in folder.iterdir() if not e.name.startswith(".") and e.name != "__MACOSX"]
        return entries[0] if len(entries) == 1 and entries[0].is_dir() else folder


def _download(repo_id: str) -> Path:
    """The dataset's snapshot in the Hugging Face cache (so importing again costs nothing)."""
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    page = f"https://huggingface.co/datasets/{repo_id}"
    try:
        return Path(snapshot_download(repo_id, repo_type="dataset", allow_patterns=HUB_FILES))
    except GatedRepoError:
        why = f"{repo_id} is gated: accept its terms at {page}, then log in with `hf auth login` (or set HF_TOKEN)."
    except RepositoryNotFoundError:
        why = f"{repo_id} is neither a folder here nor a dataset on the Hub (if private, run `hf auth login`)."
    except LocalEntryNotFoundError:
        if constants.HF_HUB_OFFLINE:
            why = f"{repo_id} is not a folder here, and HF_HUB_OFFLINE is set so it cannot come from the Hub: unset it."
        else:
            why = f"cannot download {repo_id}: the Hub is unreachable; check the network or proxy and try again."
    except HfHubHTTPError as exc:
        why = f"cannot download {repo_id}: the Hub answered {getattr(exc.response, 'status_code', exc)}; retry later."
    except OSError as exc:
        why = f"cannot download {repo_id}: {exc.strerror or exc}; check the free space of the Hugging Face cache."
    raise ImportRefused(why, 1)


# --- where it goes ---------------------------------------------------------------------------------
def _check_destination(dest: Path) -> None:
    if dest.exists() and not dest.is_dir():
        raise ImportRefused(f"{dest} is a file; pass a folder to import into.", 2)
    if not dest.is_dir() or not any(dest.iterdir()):
        return
    try:
        if detect_layout(dest) is Layout.CANONICAL:
            return
    except DatasetError:
        pass
    raise ImportRefused(
        f"{dest} is not empty and is not a videos/ + metas/ dataset; import into a new or empty folder.", 2
    )


def _check_not_inside(dest: Path, root: Path, source: str) -> None:
    dest_abs, root_abs = dest.resolve(), root.resolve()
    if dest_abs != root_abs and dest_abs.is_relative_to(root_abs):
        raise ImportRefused(f"{dest} is inside {source}; choose a folder outside the source.", 2)


def _plan(items: list[Item], dest: Path) -> list[tuple[Item, Path, Path | None]]:
    """(item, video target, caption target) for every clip; refuses if any target holds different content."""
    plan, taken = [], []
    for item in items:
        if os.sep in item.key or item.key in {"", ".", ".."}:  # keys are one file name by construction
            raise ImportRefused(f"{item.video} would get the unsafe file name {item.key!r}; rename it.", 2)
        video = dest / "videos" / f"{item.key}.mp4"
        caption = dest / "metas" / f"{item.key}.txt" if item.caption is not None else None
        if video.exists() and not filecmp.cmp(item.video, video, shallow=False):
            taken.append(video)
        if caption and caption.exists() and _read(caption) != item.caption:
            taken.append(caption)
        plan.append((item, video, caption))
    if taken:
        names = ", ".join(str(p) for p in taken[:3]) + (f" and {len(taken) - 3} more" if len(taken) > 3 else "")
        raise ImportRefused(
            f"{dest} already has different files under the same names ({names}); nothing was written: "
            "import into a new folder or remove those files.",
            2,
        )
    return plan


def _transfer(plan: list[tuple[Item, Path, Path | None]], dest: Path, move: bool) -> int:
    """Write every planned file that is not already there; returns how many clips were written."""
    # Both folders always exist, so DIR is a canonical dataset even when no clip has a caption.
    (dest / "videos").mkdir(parents=True, exist_ok=True)
    (dest / "metas").mkdir(parents=True, exist_ok=True)
    place = shutil.move if move else shutil.copyfile  # move: a rename unless DIR is its own mount point
    written = 0
    for item, video, caption in plan:
        if not video.exists():
            _atomic(video, lambda tmp, source=item.video: place(source, tmp))
            written += 1
        if caption is not None and not caption.exists():
            _atomic(caption, lambda tmp, text=_text(item): tmp.write_text(text, encoding="utf-8"))
    return written


def _atomic(target: Path, write: Callable[[Path], object]) -> None:
    """Write through a hidden sibling and rename, so an interrupted import leaves no half-written file."""
    partial = target.with_name(f".{target.name}.partial")
    try:
        write(partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def _text(item: Item) -> str:
    return f"{item.caption}\n"


def _read(caption: Path) -> str:
    return caption.read_text(encoding="utf-8", errors="replace").strip()  # as list_items reads it back
