"""What a cache entry depends on, as digests: the model's component files (Hugging Face blobs by their name,
local files hashed once and remembered by size and mtime), the prompt projection's weights, the dtypes and
library versions, and `FORMAT`. Two runs share an entry exactly when these agree (trainer.cache)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from trainer.datasets import sha256_file
from trainer.spec.user_cache import cache_root

FORMAT = 1  # bump when what is stored, or how it is computed, changes: older entries are then never read
PROMPT_TOKENS = 512  # cosmos.encode_prompts pads/truncates every caption to this many tokens
log = logging.getLogger("trainer")


class CacheError(ValueError):
    """A cache that cannot be built or read, with the folder and the fix."""


def _file_digest(path: Path, memo: dict) -> str:
    real = path.resolve()
    if real.parent.name == "blobs" and re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", real.name):
        return real.name  # the Hugging Face cache names every blob by its content hash
    stat = real.stat()
    stamp = [stat.st_size, stat.st_mtime_ns]
    known = memo.get(str(real))
    if known and known[:2] == stamp:
        return known[2]
    if stat.st_size > 1 << 30:
        log.info("cache: hashing %s (%.1f GB) once to identify the model", real, stat.st_size / 1e9)
    memo[str(real)] = [*stamp, sha256_file(real)]
    return memo[str(real)][2]


def folder_digest(folder: Path, memo: dict) -> str:
    """sha256 over every file of a component folder (names and contents); hidden files are ignored."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder)
        if not any(part.startswith(".") for part in rel.parts):
            digest.update(f"{rel.as_posix()}\t{_file_digest(path, memo)}\n".encode())
    return digest.hexdigest()


def tensor_digest(tensor: torch.Tensor) -> str:
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    return hashlib.sha256(flat.view(torch.uint8).numpy().tobytes()).hexdigest()


def digest(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def components_fingerprint(pipe, projection: nn.Linear | None, identity: str | None = None) -> dict:
    """Everything about the model that changes the cached tensors. `identity` replaces the file digests for a
    pipeline that was built in memory (the benchmark's random weights)."""
    import diffusers
    import transformers

    ident = {
        "format": FORMAT,
        "prompt_tokens": PROMPT_TOKENS,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "vae_dtype": str(pipe.vae.dtype),
        "text_encoder_dtype": str(pipe.text_encoder.dtype),
        "prompt_map": tensor_digest(projection.weight) if projection is not None else "raw",
    }
    if identity is not None:
        return {**ident, "identity": identity}
    root = Path(getattr(pipe, "name_or_path", "") or "")
    memo_path = cache_root() / "latents" / "file-digests.json"
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    for name in ("vae", "text_encoder", "tokenizer"):
        if not (root / name).is_dir():
            raise CacheError(
                f"the pipeline's {name} folder {root / name} does not exist, so the latent cache cannot "
                "tell which weights it holds; set cache: off."
            )
        ident[name] = folder_digest(root / name, memo)
    write_atomic(memo_path, lambda tmp: tmp.write_text(json.dumps(memo)))
    return ident


def write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)
