"""Old generations, uploads and exports removed by age, so a long-running studio does not fill its disk.

Runs, datasets and adapters are never removed here: they are deleted one by one, by name, with a typed
confirmation (Train, Data and Adapters tabs). From the command line:

    python -m studio.cleanup --workspace workspace --older-than-days 14
"""

from __future__ import annotations

import argparse
import shutil
import sys
import threading
import time
from pathlib import Path

from studio.folders import Workspace

DAY_S = 86400.0
EVERY_S = 3600.0


def _newest_mtime(path: Path) -> float:
    """A folder counts as old only when nothing in it is new (a generation still being written is not)."""
    times = [path.stat().st_mtime]
    if path.is_dir():
        times += [p.stat().st_mtime for p in path.rglob("*")]
    return max(times)


def prune(ws: Workspace, older_than_days: float, now: float | None = None) -> list[Path]:
    """Remove every entry of generations/, exports/ and the upload folder older than the limit; returns them."""
    if older_than_days <= 0:
        return []
    cutoff = (now or time.time()) - older_than_days * DAY_S
    removed = []
    for folder in (ws.generations, ws.exports, ws.gradio_temp, ws.generations / "inputs"):
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            if entry.name in ("inputs", "worker.log") or entry.is_symlink():
                continue
            try:
                if _newest_mtime(entry) >= cutoff:
                    continue
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
            except OSError:
                continue  # removed meanwhile, or in use: the next round tries again
            removed.append(entry)
    return removed


def start_pruning(ws: Workspace, older_than_days: float) -> None:
    """Prune now and then every hour, in a daemon thread (it ends with the studio)."""
    if older_than_days <= 0:
        return

    def loop() -> None:
        while True:
            prune(ws, older_than_days)
            time.sleep(EVERY_S)

    threading.Thread(target=loop, daemon=True, name="prune-generations").start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Remove old generations, uploads and exports of a workspace.")
    parser.add_argument("--workspace", default="workspace")
    parser.add_argument("--older-than-days", type=float, required=True)
    args = parser.parse_args(argv)
    ws = Workspace(Path(args.workspace).expanduser().resolve())
    if not ws.root.is_dir():
        print(f"cleanup: {args.workspace} is not a folder; pass the studio's --workspace.", file=sys.stderr)
        return 2
    removed = prune(ws, args.older_than_days)
    print(f"Removed {len(removed)} entries older than {args.older_than_days:g} days.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
