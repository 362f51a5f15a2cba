"""Where the project keeps what it builds on first use (tiny model, sample data, latent caches); torch-free."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """$COSMOS_STUDIO_CACHE, else ~/.cache/cosmos-lora-studio."""
    return Path(os.environ.get("COSMOS_STUDIO_CACHE", Path.home() / ".cache" / "cosmos-lora-studio"))
