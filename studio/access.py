"""Who may do what: the one visitor / signed-in user / owner policy of a studio, set once by the owner's flags.

A studio is *public* on a Hugging Face Space (SPACE_ID set), on any --host other than loopback, or behind a
--share link; anyone who can open its page can call every endpoint. There, what would cost the owner (their
Hub token, their licence, their bandwidth) is decided here, never by what the page offers:

| | visitor (public, no --auth) | signed-in user (public, --auth) | owner (127.0.0.1 outside a Space) |
|---|---|---|---|
| guardrail off for NVIDIA models (training samples included) | no | no | yes |
| models | the allow-list | the allow-list, or a Hub model up to --max-download-gb | any |
| Hub datasets | the allow-list | the allow-list, or a Hub dataset up to --max-download-gb | any |
| publish to the Hub (HF_TOKEN) | no | yes | yes |
| downloads carry the owner's HF_TOKEN | no: withheld from the studio and its children | yes | yes |

The allow-list is the embedded tiny model, NVIDIA's model at its pinned revision, what is already in the
Hugging Face cache, and whatever the owner adds (--allow-model, --allow-dataset). The owner opens the guardrail
with --allow-guardrail-off. Every check raises AccessRefused, one sentence that names the field and the fix.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from trainer.spec.config import DEFAULT_HUB_MODEL, resolve_revision
from trainer.spec.embedded import TINY_MODEL

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
DEFAULT_MAX_DOWNLOAD_GB = 20.0  # a Hub model or dataset beyond the allow-list, for a signed-in user
REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}")  # the Hub's own limit: 96 characters a name
REVISION = re.compile(r"[\w.-][\w./-]{0,199}")
HUB_TOKEN_VARIABLES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
BUILT_IN_MODELS = (TINY_MODEL, f"{DEFAULT_HUB_MODEL}@{resolve_revision(DEFAULT_HUB_MODEL, None)}")


class Refused(ValueError):
    """A request the studio will not carry out; the message is one sentence for the user (no server paths).

    The controllers' own errors derive from it; data problems are trainer.datasets.DatasetError. A tab catches
    studio.folders.REFUSALS, both."""


class AccessRefused(Refused):
    """A request this caller's role may not make on this studio (see the module's table)."""


class Role(str, Enum):
    VISITOR = "visitor"
    USER = "signed-in user"
    OWNER = "owner"


def is_public(host: str, environ: dict[str, str] | None = None, share: bool = False) -> bool:
    """Whether others can reach the studio: a Space, a --host other than loopback, or a --share link."""
    environ = os.environ if environ is None else environ
    return bool(environ.get("SPACE_ID")) or host not in LOOPBACK_HOSTS or share


@dataclass(frozen=True)
class Access:
    """The policy of one studio. The default is an owner's own studio on 127.0.0.1: everything open."""

    public: bool = False
    signed_in: bool = False  # --auth: every caller has signed in (Gradio refuses the others, API included)
    models: tuple[str, ...] = ()  # the owner's additions to the allow-list: "owner/name" or "owner/name@revision"
    datasets: tuple[str, ...] = ()  # Hub dataset ids the owner allows
    max_download_gb: float = DEFAULT_MAX_DOWNLOAD_GB
    guardrail_optional: bool = False  # --allow-guardrail-off: the owner takes the licence decision for everyone

    @property
    def role(self) -> Role:
        if not self.public:
            return Role.OWNER
        return Role.USER if self.signed_in else Role.VISITOR

    # --- the checks ---------------------------------------------------------------------------------
    def check_guardrail(self, model: str, guardrail: bool) -> None:
        """Refuse turning NVIDIA's guardrail off on a public studio, unless the owner allowed it."""
        if guardrail or model == TINY_MODEL or self.may_turn_off_guardrail():
            return
        raise AccessRefused(
            "guardrail: this public studio keeps NVIDIA's guardrail on (its Open Model License ends the owner's "
            "rights if it is bypassed); set guardrail to true, or use the tiny model."
        )

    def check_samples(self, model: str, sample_every: int) -> None:
        """Samples during training render with the training pipeline, which carries no guardrail: on a public
        studio they are for the tiny model only, unless the owner allowed the guardrail off."""
        if sample_every <= 0 or model == TINY_MODEL or self.may_turn_off_guardrail():
            return
        raise AccessRefused(
            "sample_every: samples during training render NVIDIA's model without its guardrail, which this public "
            "studio keeps on; set sample_every to 0 and compare the adapter in Generate & compare afterwards."
        )

    def may_turn_off_guardrail(self) -> bool:
        return self.role is Role.OWNER or self.guardrail_optional

    def guardrail_note(self) -> str | None:
        """Why the guardrail control is locked on, or None where it is the caller's choice."""
        if self.may_turn_off_guardrail():
            return None
        return (
            "Kept on for NVIDIA's models on this public studio: NVIDIA's Open Model License ends the owner's rights "
            "if the guardrail is bypassed (the tiny model needs none)."
        )

    def check_model(self, model: str, revision: str = "", api=None) -> None:
        """Refuse a Hub model this caller may not make the server download (local folders: studio.paths)."""
        model = (model or "").strip()
        if self.role is Role.OWNER or self.allows_model(model, revision):
            return
        if self.role is Role.VISITOR:
            raise AccessRefused(
                f"model: {_quoted(model)} is not among the models this public studio offers; use "
                f"{' or '.join(repr(m.split('@')[0]) for m in BUILT_IN_MODELS)} (the owner adds others with "
                "--allow-model)."
            )
        self._check_size("model", model, resolve_revision(model, revision or None), api)

    def check_hub_dataset(self, repo_id: str, api=None) -> None:
        """Refuse a Hub dataset this caller may not make the server download."""
        if self.role is Role.OWNER or repo_id in self.datasets or in_cache("dataset", repo_id):
            return
        if self.role is Role.VISITOR:
            raise AccessRefused(
                f"Hub dataset {_quoted(repo_id)} is not among the datasets this public studio offers; upload a .zip "
                "instead (the owner adds Hub datasets with --allow-dataset)."
            )
        self._check_size("dataset", repo_id, None, api)

    def check_publish(self) -> None:
        """Publishing uploads with the server's own Hub token: never for an anonymous visitor."""
        if self.role is Role.VISITOR:
            raise AccessRefused(
                "Publishing to the Hub uses the owner's token, so this public studio allows it only to signed-in "
                "users; the owner turns sign-in on with --auth (STUDIO_AUTH)."
            )

    def withhold_token(self, environ: dict[str, str] | None = None) -> bool:
        """On a studio of anonymous visitors, take the owner's Hub token out of `environ` (the studio's, which
        every child inherits) and stop the Hub client from reading its login file: nothing a visitor starts
        (a download, an import) uses it. True when it was withheld."""
        if self.role is not Role.VISITOR:
            return False
        environ = os.environ if environ is None else environ
        for name in HUB_TOKEN_VARIABLES:
            environ.pop(name, None)
        environ["HF_HUB_DISABLE_IMPLICIT_TOKEN"] = "1"
        return True

    def offer_note(self, kind: str) -> str | None:
        """What a visitor may pick ("model" or "dataset"), for the control's help; None for everyone else."""
        if self.role is not Role.VISITOR:
            return None
        if kind == "model":
            names = [m.split("@")[0] for m in (*BUILT_IN_MODELS, *self.models)]
            return f"This public studio offers {', '.join(dict.fromkeys(names))} and what its cache holds."
        listed = ", ".join(self.datasets) if self.datasets else "none besides what its cache holds"
        return f"This public studio imports only the Hub datasets its owner allows: {listed}. Upload a .zip instead."

    # --- what is allowed ----------------------------------------------------------------------------
    def allows_model(self, model: str, revision: str = "") -> bool:
        """Whether `model` at `revision` is on the allow-list (built in, added by the owner, or in the cache)."""
        if model == TINY_MODEL:
            return True
        wanted = resolve_revision(model, revision or None)
        for entry in (*BUILT_IN_MODELS, *self.models):
            name, _, pinned = entry.partition("@")
            if name == model and (not pinned and not revision or pinned == wanted):
                return True
        return in_cache("model", model, wanted)

    def _check_size(self, kind: str, repo_id: str, revision: str | None, api) -> None:
        size = hub_size(kind, repo_id, revision, api)
        if size > self.max_download_gb * 2**30:
            raise AccessRefused(
                f"{'model' if kind == 'model' else 'Hub dataset'}: {_quoted(repo_id)} holds {size / 2**30:.1f} GB, more "
                f"than the {self.max_download_gb:g} GB this studio downloads (--max-download-gb); pick a smaller one."
            )


def _quoted(value: str) -> str:
    """A caller's value as a message quotes it: never more than a line, whatever was sent."""
    return repr(value if len(value) <= 80 else value[:77] + "...")


def hub_size(kind: str, repo_id: str, revision: str | None = None, api=None) -> int:
    """Bytes of a Hub repository's files at `revision`, from the Hub's listing (nothing is downloaded)."""
    from huggingface_hub import HfApi

    api = api or HfApi()
    info = api.model_info if kind == "model" else api.dataset_info
    try:
        files = info(repo_id, revision=revision, files_metadata=True).siblings or []
    except Exception as exc:  # offline, not found, gated: any of them means the size is unknown
        raise AccessRefused(
            f"{'model' if kind == 'model' else 'Hub dataset'}: cannot check the size of {_quoted(repo_id)} on the Hub "
            f"({type(exc).__name__}); check the id and the network, then try again."
        ) from None
    return sum(f.size or 0 for f in files)


def in_cache(kind: str, repo_id: str, revision: str | None = None) -> bool:
    """Whether the Hugging Face cache holds `repo_id` (at `revision`, default main): no download is needed."""
    from huggingface_hub import constants

    revision = revision or "main"
    if not REPO_ID.fullmatch(repo_id) or not REVISION.fullmatch(revision) or ".." in repo_id + revision:
        return False  # not a Hub id (a path, a megabyte of text): nothing of it is in the cache
    folder = Path(constants.HF_HUB_CACHE) / f"{kind}s--{repo_id.replace('/', '--')}"
    try:
        return (folder / "refs" / revision).is_file() or (folder / "snapshots" / revision).is_dir()
    except OSError:
        return False
