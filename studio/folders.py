"""The workspace's folders and who may change them: the `Workspace` every controller is given, and the studio's
refusals (`Refused` itself is studio.access's, with who may do what). No controller imports studio.workspace
(which builds the controllers), so this stands apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from studio.access import Access, Refused
from trainer.datasets import DatasetError
from trainer.spec.run_folder import RUNS_DIR

# What a tab shows as one warning: the studio's own refusals and the data checks' (each one sentence).
REFUSALS = (Refused, DatasetError)


class ReadOnlyError(Refused):
    """A change requested of a studio started with --read-only."""


class QuotaError(Refused):
    """New data requested of a workspace that already holds its --max-workspace-gb."""


@dataclass(frozen=True)
class Workspace:
    """The workspace folder and how this studio may use it (set once, at start, by the operator's flags)."""

    root: Path
    read_only: bool = False  # browse, compare and download only: no training, import, edit or delete
    allow_local_folders: bool = False  # whether requests may read server folders outside the workspace
    max_bytes: int | None = None  # a workspace holding this much takes no new data (deleting still works)
    access: Access = Access()  # who may do what (visitor, signed-in user, owner): studio.access

    def require_writable(self, action: str) -> None:
        """Refuse `action` (e.g. "training") in a read-only studio, whoever asks and however."""
        if self.read_only:
            raise ReadOnlyError(
                f"This studio is read-only: {action} is turned off (browse, compare and download only)."
            )

    def require_room(self, action: str) -> None:
        """Refuse `action` (something that adds data: an import, a run, a generation) when the workspace is full."""
        if self.max_bytes is None:
            return
        used = workspace_bytes(self.root)
        if used >= self.max_bytes:
            raise QuotaError(
                f"The workspace is full ({used / 2**30:.1f} of {self.max_bytes / 2**30:g} GB): "
                f"{action} is refused; delete old runs, datasets or generations first."
            )

    def room(self) -> int | None:
        """Bytes the workspace may still take before its quota (None: no quota): what an import may unpack to."""
        return None if self.max_bytes is None else max(self.max_bytes - workspace_bytes(self.root), 0)

    @property
    def runs(self) -> Path:
        return self.root / RUNS_DIR

    @property
    def datasets(self) -> Path:
        return self.root / "datasets"

    @property
    def adapters(self) -> Path:
        return self.root / "adapters"

    @property
    def generations(self) -> Path:
        return self.root / "generations"

    @property
    def exports(self) -> Path:
        return self.root / "exports"

    @property
    def gradio_temp(self) -> Path:
        return self.root / ".gradio"


def workspace_bytes(root: Path) -> int:
    """Bytes held by the files under `root` (links not followed): what counts against the quota."""
    total = 0
    for path in root.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
        except OSError:  # removed while we looked
            continue
    return total
