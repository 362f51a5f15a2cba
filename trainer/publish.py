"""Publish an adapter folder to the Hugging Face Hub as a model repository.

Uploaded: the weights, `adapter_card.json`, a README.md model card written for the repository (Hub front matter,
provenance, training settings, the evaluation numbers and the comparison video when present, and code that loads
the adapter by its repo id). The token comes from `HF_TOKEN` or the login cache (`hf auth login`), read by the
Hub client itself: it is never printed, logged or written anywhere. Torch-free: the studio calls it in-process.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from trainer import model_card
from trainer.model_card import EVALUATION_FILE
from trainer.spec.run_folder import CARD_FILE, COMPARE_VIDEO_FILE, MODEL_CARD_FILE, WEIGHTS_FILE

# The Hub's repo id rule: owner/name, letters, digits, '-', '_' and '.', no '--' or '..', at most 96 characters.
REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
HUB_URL = "https://huggingface.co"


class PublishError(ValueError):
    """Publishing cannot go ahead or failed; one sentence naming what and how to fix it."""


class NoTokenError(PublishError):
    """No Hugging Face token on this machine (a set-up problem, not a failed upload)."""


@dataclass
class PublishPlan:
    repo_id: str
    private: bool
    files: dict[str, Path] = field(default_factory=dict)  # name in the repository -> local file
    readme: str = ""

    @property
    def url(self) -> str:
        return f"{HUB_URL}/{self.repo_id}"


def check_repo_id(repo_id: str) -> str:
    repo_id = repo_id.strip()
    if not REPO_ID.match(repo_id) or len(repo_id.split("/")[1]) > 96 or "--" in repo_id or ".." in repo_id:
        raise PublishError(
            f"repo: {repo_id!r} is not a Hub repository id; write it as owner/name (letters, digits, '-', '_', '.')."
        )
    return repo_id


def plan(
    adapter_dir: str | Path,
    repo_id: str,
    private: bool = False,
    evaluation: str | Path | None = None,
    video: str | Path | None = None,
) -> PublishPlan:
    """What would be uploaded: checks everything that can be checked offline."""
    adapter_dir = Path(adapter_dir)
    repo_id = check_repo_id(repo_id)
    for name in (WEIGHTS_FILE, CARD_FILE):
        if not (adapter_dir / name).is_file():
            raise PublishError(f"{adapter_dir} has no {name}; publish an adapter folder written by the trainer.")
    try:
        card = json.loads((adapter_dir / CARD_FILE).read_text())
    except ValueError as exc:
        raise PublishError(f"{adapter_dir / CARD_FILE} is not valid JSON ({exc}); restore it from the run.") from None
    result = PublishPlan(
        repo_id, bool(private), {WEIGHTS_FILE: adapter_dir / WEIGHTS_FILE, CARD_FILE: adapter_dir / CARD_FILE}
    )
    scores = _optional(evaluation, adapter_dir / EVALUATION_FILE, "evaluation")
    if scores is not None:
        result.files[EVALUATION_FILE] = scores
    clip = _optional(video, adapter_dir / COMPARE_VIDEO_FILE, "video")
    if clip is not None:
        result.files[COMPARE_VIDEO_FILE] = clip
    try:
        numbers = json.loads(scores.read_text()) if scores else None
    except ValueError as exc:
        raise PublishError(f"{scores} is not `evaluate --json` output ({exc}).") from None
    video_url = f"{result.url}/resolve/main/{COMPARE_VIDEO_FILE}" if clip else None
    result.readme = model_card.render(card, repo_id, numbers, video_url)
    return result


def _optional(given: str | Path | None, default: Path, what: str) -> Path | None:
    if given:
        if not Path(given).is_file():
            raise PublishError(f"{what}: {given} does not exist; give an existing file or leave it out.")
        return Path(given)
    return default if default.is_file() else None


def stage(p: PublishPlan, folder: Path) -> Path:
    """Write exactly the files that would be uploaded into `folder` (a dry run, or the upload's source)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, source in p.files.items():
        shutil.copyfile(source, folder / name)
    (folder / MODEL_CARD_FILE).write_text(p.readme)
    return folder


def publish(p: PublishPlan, api=None) -> str:
    """Create the repository (kept if it exists) and upload the staged files in one commit; returns its URL."""
    import huggingface_hub
    from huggingface_hub import errors as hub

    if huggingface_hub.get_token() is None:
        raise NoTokenError(
            "no Hugging Face token on this machine: set HF_TOKEN to a write token, or run `hf auth login`."
        )
    api = api or huggingface_hub.HfApi()
    try:
        api.create_repo(p.repo_id, repo_type="model", private=p.private, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="cosmos-publish-") as tmp:
            api.upload_folder(
                repo_id=p.repo_id,
                repo_type="model",
                folder_path=str(stage(p, Path(tmp))),
                commit_message="Upload adapter from Cosmos LoRA Studio",
            )
    except hub.HfHubHTTPError as exc:
        status = getattr(exc.response, "status_code", None)
        if status in (401, 403):
            raise PublishError(
                f"the Hub refused to write to {p.repo_id} (HTTP {status}): use a token with write "
                "access to that owner (HF_TOKEN or `hf auth login`)."
            ) from None
        raise PublishError(
            f"publishing to {p.repo_id} failed (HTTP {status}); check the network and try again."
        ) from None
    except (OSError, hub.HfHubHTTPError.__mro__[1]) as exc:  # [1]: the HTTP library's base error (no connection ...)
        raise PublishError(f"publishing to {p.repo_id} failed ({type(exc).__name__}); check the network.") from None
    return p.url
