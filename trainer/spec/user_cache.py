"""Where the project keeps what it builds on first use (sample data, latent caches), and how it builds it; torch-free."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def cache_root() -> Path:
    """$COSMOS_STUDIO_CACHE, else ~/.cache/cosmos-lora-studio."""
    return Path(os.environ.get("COSMOS_STUDIO_CACHE", Path.home() / ".cache" / "cosmos-lora-studio"))


def build_once(target: Path, complete_mark: str, build: Callable[[Path], object]) -> Path:
    """`target`, built by `build(folder)` unless it already holds `complete_mark`.

    The build goes to a hidden folder beside the target that is then renamed, so processes racing here (DDP
    ranks, two studio requests) never see a half-built folder; a loser of the race discards its identical build.
    """
    if (target / complete_mark).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".building-"))
    try:
        build(tmp)
        tmp.rename(target)
    except OSError:
        if not (target / complete_mark).exists():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
