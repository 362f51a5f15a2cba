"""The studio's path policy, in one place: which folders a request may read or write, and how paths are shown.

Anyone who can open the page can also call every endpoint directly, so each dataset, clip, run or adapter a
request names is checked here, never trusted because the UI only offers good values:

- a dataset resolves (symlinks included) inside the workspace, or is the built-in sample, which is read-only;
  any other server folder is readable only when the operator allowed local folders (`--allow-local-folders`);
- writes (caption edits, deletes) go only inside the workspace's own folders;
- clip, run, dataset and adapter names are one file name each, never a path;
- messages show paths relative to the workspace, never the server's absolute paths (`redact`).
"""

from __future__ import annotations

import re
from pathlib import Path

from studio.access import LOOPBACK_HOSTS
from studio.folders import Refused, Workspace
from trainer.spec.embedded import is_sample, resolve_data
from trainer.spec.user_cache import cache_root

NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
REPO_ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = "a folder outside the workspace"
# The folders of an absolute path in free text ("/srv/data/x.mp4" -> "x.mp4"); not a URL's "//" or "host/x".
ABSOLUTE_DIRS = re.compile(r"(?<![\w:/.~<>-])/(?:[^\s/'\"`]+/)+")


class PathRefused(Refused):
    """A request naming a path the policy does not allow; the message shows no absolute path."""


def as_workspace(workspace: Workspace | str | Path) -> Workspace:
    """Controllers accept a Workspace; a bare folder means one with the default (strict) settings."""
    return workspace if isinstance(workspace, Workspace) else Workspace(Path(workspace).expanduser().resolve())


def check_name(value: str, what: str) -> str:
    """`value` as one file name (letters, digits, '-', '_', '.'; not starting with '.'), else PathRefused."""
    value = (value or "").strip()
    if not NAME.match(value) or len(value) > 200:
        raise PathRefused(
            f"The {what} {_short(value)} must be one name of letters, digits, '-', '_' and '.' "
            "(not a path); pick one from the list."
        )
    return value


def is_inside(path: Path, folder: Path) -> bool:
    """Whether `path`, with every symlink resolved, is `folder` or below it."""
    try:
        return Path(path).resolve().is_relative_to(Path(folder).resolve())
    except (OSError, RuntimeError):  # a symlink loop
        return False


def local_folders_default(host: str, environ: dict[str, str]) -> bool:
    """Local folders are on by default only for a studio on the loopback address outside a hosted Space."""
    return host in LOOPBACK_HOSTS and not environ.get("SPACE_ID")


def is_local_model(model: str) -> bool:
    """Whether a `model` value names a folder on the server (not "tiny" and not a Hub id)."""
    model = (model or "").strip()
    return model != "tiny" and (model.startswith(("/", ".", "~")) or not HUB_ID.match(model))


class PathPolicy:
    def __init__(self, workspace: Workspace | str | Path):
        self.workspace = as_workspace(workspace)
        self.root = self.workspace.root

    # --- datasets --------------------------------------------------------------------------------
    def dataset(self, value: str, write: bool = False) -> Path:
        """The folder a dataset value names, after the policy's checks (see the module docstring)."""
        value = (value or "").strip()
        if not value:
            raise PathRefused("No dataset chosen; pick the sample or import one first.")
        if is_sample(value):
            if write:
                raise PathRefused(
                    "The built-in sample is read-only; import it to edit it (Data tab: Import a copy to edit)."
                )
            try:
                return resolve_data(value)
            except ValueError as exc:
                raise PathRefused(str(exc)) from None
        path = Path(value).expanduser()
        full = path if path.is_absolute() else self.root / path
        if write:
            if not is_inside(full, self.workspace.datasets) or is_inside(self.workspace.datasets, full):
                raise PathRefused(
                    f"Only datasets imported into the workspace (datasets/<name>) can be changed; "
                    f"import {self.show(full)} first."
                )
            return full
        if is_inside(full, self.root):
            return full
        if self.workspace.allow_local_folders:
            return full.resolve()
        raise PathRefused(
            "That dataset is outside the workspace; pick the sample or a dataset imported under "
            "datasets/ (this studio does not read other server folders)."
        )

    def local_folder(self, value: str) -> Path:
        """A server folder to import from: only with --allow-local-folders (an operator's feature)."""
        if not self.workspace.allow_local_folders:
            raise PathRefused(
                "Importing a folder of the server is turned off here; upload a .zip or the files, "
                "or start the studio with --allow-local-folders."
            )
        return Path(value).expanduser().resolve()

    def sample_frames(self, config) -> list[dict[str, str]]:
        """A TrainConfig's sample_prompts with each first frame as an absolute path (relative ones are in the
        workspace), refused outside the workspace unless local folders are allowed (the trainer reads them as it
        reads the data), and, when samples are on (sample_every), when the file does not exist."""
        pinned, rendered = [], config.sample_every > 0
        for pair in config.sample_prompts:
            if not str(pair.get("image", "")).strip():  # the config's own check names it
                pinned.append(pair)
                continue
            path = Path(pair["image"]).expanduser()
            full = path if path.is_absolute() else self.root / path
            if not is_inside(full, self.root) and not self.workspace.allow_local_folders:
                raise PathRefused(
                    f"sample_prompts: the first frame {self.show(full)} is outside the workspace; use "
                    "an image or video under datasets/ or generations/."
                )
            if (
                rendered and not full.is_file()
            ):  # refused at Start, not when a run (queued, maybe for hours) reaches the trainer
                raise PathRefused(
                    f"sample_prompts: the first frame {self.show(full)} does not exist; give an image or "
                    "video that does, or leave sample_prompts empty to use held-out clips."
                )
            pinned.append({**pair, "image": str(full)})
        return pinned

    def model(self, value: str, revision: str = "") -> str:
        """A model value: a server folder only with --allow-local-folders; "tiny" or a Hub id as the studio's
        access policy allows this caller (studio.access: the allow-list, the download bound)."""
        if not is_local_model(value):
            self.workspace.access.check_model(value, revision)
        elif not self.workspace.allow_local_folders:
            raise PathRefused(
                'model: reading a model folder of the server is turned off here; use "tiny" or a Hub model id.'
            )
        return value

    def member(self, path: Path, root: Path, what: str) -> Path:
        """`path` (a clip's file), refused unless it resolves inside its dataset `root`."""
        if not is_inside(path, root):
            raise PathRefused(f"The {what} {self.show(path)} points outside its dataset; it is not read.")
        return path

    # --- showing -----------------------------------------------------------------------------------
    def show(self, path: str | Path) -> str:
        """A path as a message shows it: relative to the workspace, 'sample/...', or only its last name."""
        path = Path(path)
        for base, label in self._bases():
            try:
                rel = path.relative_to(base)
            except ValueError:
                continue
            return (Path(label) / rel).as_posix() if label else (rel.as_posix() or ".")
        return path.name or OUTSIDE

    def redact(self, text: str | None) -> str:
        """Text (an error, a log line) with the server's absolute folders replaced by short names."""
        text = text or ""
        for base, label in self._bases():
            for form in {str(base), str(base.resolve())}:
                text = text.replace(form + "/", f"{label}/" if label else "").replace(form, label or ".")
        text = text.replace(str(Path.home()), "~")
        return ABSOLUTE_DIRS.sub("", text)  # any other absolute path keeps only its last name

    def _bases(self) -> list[tuple[Path, str]]:
        # Most specific first: the workspace may sit inside the repository, the sample inside the cache.
        return [(self.root, ""), (cache_root(), "<cache>"), (REPO_ROOT, "<studio>")]


def _short(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:37] + "...") if not value.startswith("/") else "given"
