"""The workspace's folders and who may change them: the `Workspace` every controller is given, and the studio's
refusals. No controller imports studio.workspace (which builds the controllers), so this stands apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trainer.datasets import DatasetError
from trainer.run_folder import RUNS_DIR


class Refused(ValueError):
    """A request the studio will not carry out; the message is one sentence for the user (no server paths).

    The controllers' own errors derive from it; data problems are trainer.datasets.DatasetError. A tab catches
    REFUSALS, both."""


# What a tab shows as one warning: the studio's own refusals and the data checks' (each one sentence).
REFUSALS = (Refused, DatasetError)


class ReadOnlyError(Refused):
    """A change requested of a studio started with --read-only."""


@dataclass(frozen=True)
class Workspace:
    """The workspace folder and how this studio may use it (set once, at start, by the operator's flags)."""

    root: Path
    read_only: bool = False  # browse, compare and download only: no training, import, edit or delete
    allow_local_folders: bool = False  # whether requests may read server folders outside the workspace

    def require_writable(self, action: str) -> None:
        """Refuse `action` (e.g. "training") in a read-only studio, whoever asks and however."""
        if self.read_only:
            raise ReadOnlyError(f"This studio is read-only: {action} is turned off (browse, compare and download "
                                "only).")  # fmt: skip

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
