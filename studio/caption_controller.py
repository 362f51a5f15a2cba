"""Captions in the Data tab, without Gradio: proposals written by a vision-language model, reviewed clip by clip,
and the bulk tools (a prompt_prefix preview, find-and-replace with a preview of what changes).

"Write missing captions" runs `python -m trainer caption --events --to <dataset>/.caption-proposals` in a child
process (studio.launcher), for the clips of an imported dataset that have no caption. Its captions are proposals:
nothing reaches metas/ until the user accepts one (as written or edited), and accepting over a caption the user
wrote since needs an explicit confirm. Accepted captions are recorded in the dataset's provenance.json with the
model, revision, template and date of the run that proposed them.

Honest about the model: the embedded tiny model's text encoder is random, so the studio offers captioning only
with a real vision-language model at hand: the owner's COSMOS_STUDIO_CAPTION_MODEL (a local folder or a Hub id;
the tests name a tiny random one there), the default base model's text encoder in the Hugging Face cache, or
Cosmos-Reason1 from the Hub. On a public studio a visitor never makes the server download one (studio.access).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from studio import child_processes, launcher
from studio.access import Refused, Role, in_cache
from studio.dataset_controller import DATASETS_DIR, DatasetController, caption_digest
from studio.device import Device, DeviceBusy
from studio.paths import is_local_model
from trainer.caption_files import (
    default_model,
    local_model_problem,
    read_captions_record,
    record_captions,
)
from trainer.datasets import DatasetError, Layout, detect_layout, list_items
from trainer.spec.config import resolve_revision
from trainer.spec.embedded import TINY_MODEL

CAPTION_MODEL_ENV = "COSMOS_STUDIO_CAPTION_MODEL"  # the owner's choice of captioning model (folder or Hub id)
PROPOSALS_DIR = ".caption-proposals"  # inside the dataset: hidden, so never read as clips or captions
CAPTION_LOG = "caption.log"  # under datasets/: the child's stderr, for the operator
DEFAULT_TIMEOUT_S = 6 * 3600.0
STOP_GRACE_S = 5.0  # a stopped child finishes the caption file it writes, then its group is killed
MAX_PREVIEW = 200  # rows a preview shows at most (every endpoint is public)
TINY_NOTE = (
    "The embedded tiny model cannot caption: its text encoder has random weights, so its captions would be noise."
)


class CaptionRefused(Refused):
    """Captioning that cannot start or failed; one sentence for the user."""


@dataclass(frozen=True)
class Offer:
    model: str | None  # what `trainer caption --model` gets; None: captioning is not offered
    note: str  # one line the Data tab shows either way


@dataclass(frozen=True)
class Proposal:
    key: str
    text: str  # what the model wrote
    current: str  # the clip's caption in the dataset now ("" when it has none)


class CaptionController:
    def __init__(self, datasets: DatasetController, generation=None, timeout: float = DEFAULT_TIMEOUT_S):
        self.datasets = datasets
        self.ws, self.paths = datasets.ws, datasets.paths
        self.generation = generation  # a GenerationClient: on a GPU, one of its users at a time
        self.timeout = timeout
        # The studio's one owner of the device (the generation client's); without one, the CPU's alone.
        self.device = generation.device if generation is not None else Device()
        self._state = threading.Lock()
        self._running: tuple[str, Any] | None = None  # (owner, process)

    @property
    def busy(self) -> bool:
        return self.device.holds("captioning")

    # --- which model ---------------------------------------------------------------------------------
    def offer(self, environ: dict[str, str] | None = None, base_model: str = "") -> Offer:
        """The captioning model this caller may use, or None with the reason (never the tiny model's noise):
        the owner's COSMOS_STUDIO_CAPTION_MODEL, else the Train form's `base_model` when it is a real pipeline
        (its text encoder), else the default base model's text encoder when cached, else Cosmos-Reason1."""
        offer = self._offer(os.environ if environ is None else environ, (base_model or "").strip())
        if offer.model is None and TINY_NOTE not in offer.note:
            return Offer(None, f"{offer.note} {TINY_NOTE}")
        return offer

    def _offer(self, environ: dict[str, str], base_model: str) -> Offer:
        chosen = environ.get(CAPTION_MODEL_ENV, "").strip()
        if chosen == TINY_MODEL:
            return Offer(None, f"Captioning is off: {CAPTION_MODEL_ENV} names the tiny model. {TINY_NOTE}")
        if chosen:
            return self._offer_set(chosen)
        if base_model and base_model != TINY_MODEL:
            offer = self._offer_base(environ, base_model)
            if offer.model is not None:
                return offer
        return self._offer_hub(environ, default_model(), "")

    def _offer_base(self, environ: dict[str, str], base_model: str) -> Offer:
        """The Train form's model as the captioner (its text encoder), when this studio may read or fetch it."""
        if not is_local_model(base_model):
            return self._offer_hub(environ, base_model, "the Train form's model")
        folder = Path(base_model).expanduser()
        if not self.ws.allow_local_folders or not folder.is_dir() or local_model_problem(folder):
            return Offer(None, "")
        return Offer(
            str(folder), f"Captions are proposed by the text encoder of {folder.name} (the Train form's model)."
        )

    def _offer_hub(self, environ: dict[str, str], model: str, why: str) -> Offer:
        cached = in_cache("model", model, resolve_revision(model, None))
        role = self.ws.access.role
        if not cached and environ.get("HF_HUB_OFFLINE", "").strip() not in ("", "0"):
            return Offer(
                None, f"Captioning is off: {model} is not in the Hugging Face cache and HF_HUB_OFFLINE is set."
            )
        if not cached and role is Role.VISITOR:
            return Offer(None, f"Captioning is off on this public studio: {model} is not downloaded here.")
        if not cached and role is Role.USER:
            try:
                self.ws.access.check_model(model)
            except Refused as exc:
                return Offer(None, f"Captioning is off: {exc}")
        where = "in the Hugging Face cache" if cached else "downloaded from the Hub on first use, about 16 GB"
        return Offer(
            model, f"Captions are proposed by {model} ({', '.join(filter(None, (why, where)))}); you review each one."
        )

    def _offer_set(self, chosen: str) -> Offer:
        folder = Path(chosen).expanduser()
        if folder.is_absolute() or chosen.startswith("."):
            problem = local_model_problem(folder) if folder.is_dir() else f"{folder.name} does not exist"
            if problem:
                return Offer(None, f"Captioning is off: {CAPTION_MODEL_ENV}: {self.paths.redact(problem)}.")
            return Offer(str(folder), f"Captions are proposed by the model folder {folder.name} ({CAPTION_MODEL_ENV}).")
        if self.ws.access.role is Role.VISITOR and not in_cache("model", chosen):
            return Offer(None, f"Captioning is off on this public studio: {chosen} is not downloaded here.")
        return Offer(chosen, f"Captions are proposed by {chosen} ({CAPTION_MODEL_ENV}); you review each one.")

    # --- writing proposals ---------------------------------------------------------------------------
    def write_missing(self, dataset: str, owner: str | None = None, base_model: str = "") -> Iterator[dict[str, Any]]:
        """Propose captions for the clips without one; yield the child's start and progress events, then done."""
        self.ws.require_writable("writing captions")
        self.ws.require_room("writing captions")
        offer = self.offer(base_model=base_model)
        if offer.model is None:
            raise CaptionRefused(offer.note)
        root = self._canonical(dataset)
        owner = owner or uuid.uuid4().hex
        try:  # on a GPU the child loads its own model: the worker's idle copy leaves the GPU first
            self.device.take_now("captioning", owner, stop=partial(self._stop, owner))
        except DeviceBusy as exc:
            raise CaptionRefused(str(exc)) from None
        try:
            relative = root.relative_to(self.ws.root).as_posix()  # the child runs in the workspace
            options = ["--events", f"--model={offer.model}", "--variants=long", f"--to={relative}/{PROPOSALS_DIR}"]
            argv = launcher.trainer_command("caption", options, [relative])
            yield from self._run(argv, owner)
        finally:
            with self._state:
                self._running = None
            self.device.give_back(owner)

    def _run(self, argv: list[str], owner: str) -> Iterator[dict[str, Any]]:
        log = self.ws.datasets / CAPTION_LOG
        try:
            process = launcher.spawn(argv, self.ws.root, log, pipes=True)
        except OSError as exc:
            raise CaptionRefused(
                f"Captioning could not be started ({exc.strerror}); check the Python environment."
            ) from None
        process.stdin.close()
        with self._state:
            self._running = (owner, process)
        timer = threading.Timer(self.timeout, _kill, (process,))
        timer.start()
        try:
            for line in process.stdout:
                event = child_processes.event_line(line)
                if event is None:
                    continue
                if event["event"] == "error":
                    raise CaptionRefused(self._cancelled_or(owner, self.paths.redact(str(event.get("message")))))
                yield event
                if event["event"] == "done":
                    return
            code = process.wait()
            raise CaptionRefused(
                self._cancelled_or(owner, f"Captioning exited (code {code}); datasets/{CAPTION_LOG} has its log.")
            )
        finally:
            timer.cancel()
            if process.poll() is None:
                _kill(process)
            process.wait()
            process.stdout.close()

    def _cancelled_or(self, owner: str, message: str) -> str:
        cancelled = self.device.cancelled(owner)
        return "Captioning was cancelled; the proposals written so far are kept." if cancelled else message

    def cancel(self, owner: str) -> bool:
        """Stop `owner`'s captioning (asked first: the file being written is finished or dropped whole)."""
        return self.device.cancel(owner, "captioning")

    def _stop(self, owner: str) -> None:
        with self._state:
            running = self._running
        if running is not None and running[0] == owner:
            _kill(running[1])

    def close(self) -> None:
        with self._state:
            running = self._running
        if running is not None:
            _kill(running[1])

    # --- reviewing proposals -------------------------------------------------------------------------
    def proposals(self, dataset: str) -> list[Proposal]:
        """Every proposal waiting for review, with the clip's caption now, in clip order."""
        root = self.datasets.path(dataset)
        folder = root / PROPOSALS_DIR
        if not folder.is_dir():
            return []
        current = {item.key: item.caption or "" for item in self._items(root)}
        found = []
        for path in sorted(folder.glob("*.txt")):
            if path.stem in current and not path.is_symlink():
                found.append(
                    Proposal(path.stem, path.read_text(encoding="utf-8", errors="replace").strip(), current[path.stem])
                )
        return found

    def accept(self, dataset: str, key: str, text: str | None = None, replace_mine: bool = False) -> Path:
        """Save the proposal of `key` (or `text`, the user's edit of it) as the clip's caption and record where it
        came from. A caption the clip has by now is replaced only with `replace_mine`."""
        proposal = self._proposal(dataset, key)
        text = (text if text is not None else proposal.text).strip()
        if proposal.current and not replace_mine:
            raise CaptionRefused(
                f"{key!r} has a caption you wrote; tick 'replace captions I wrote' to replace it with this one."
            )
        target = self.datasets.save_caption(dataset, key, text, loaded=caption_digest(proposal.current))
        root = self.datasets.path(dataset, write=True)
        self._record(root, key, edited=text != proposal.text)
        (root / PROPOSALS_DIR / f"{key}.txt").unlink(missing_ok=True)
        return target

    def reject(self, dataset: str, key: str) -> None:
        """Drop the proposal of `key`; the clip's caption is not touched."""
        self.ws.require_writable("reviewing captions")
        self._proposal(dataset, key)
        (self.datasets.path(dataset, write=True) / PROPOSALS_DIR / f"{key}.txt").unlink(missing_ok=True)

    def _proposal(self, dataset: str, key: str) -> Proposal:
        found = {p.key: p for p in self.proposals(dataset)}
        if key not in found:
            raise CaptionRefused(f"No caption proposal for {key!r}; write missing captions first.")
        return found[key]

    def _record(self, root: Path, key: str, edited: bool) -> None:
        """Copy the proposing run's provenance entry into the dataset's, adding `key` to its accepted clips."""
        run = next((r for r in read_captions_record(root / PROPOSALS_DIR) if key in (r.get("clips") or [])), None)
        if run is None:
            return
        entry = next((r for r in read_captions_record(root) if r.get("id") == run.get("id")), None)
        entry = entry or {**run, "clips": [], "edited": []}
        entry["clips"] = sorted({*entry.get("clips", []), key})
        entry["edited"] = sorted({*entry.get("edited", []), *([key] if edited else [])})
        record_captions(root, entry)

    # --- bulk tools ----------------------------------------------------------------------------------
    def prefix_preview(self, dataset: str, prefix: str) -> list[tuple[str, str]]:
        """(clip, caption as trained) with `prompt_prefix` put before each caption, as the trainer does."""
        items = self._items(self.datasets.path(dataset), prefix or "")
        return [(item.key, item.caption or "(no caption)") for item in items[:MAX_PREVIEW]]

    def replace_preview(self, dataset: str, find: str, replace: str) -> tuple[list[tuple[str, str, str]], str]:
        """The captions `find` -> `replace` would change: (clip, before, after), and a digest of exactly that change
        for `replace_apply` (so what is applied is what was previewed)."""
        if not find:
            raise CaptionRefused("find: give the text to replace.")
        changes = [
            (item.key, item.caption, item.caption.replace(find, replace))
            for item in self._items(self.datasets.path(dataset))
            if item.caption and find in item.caption
        ]
        return changes, _digest(changes)

    def replace_apply(self, dataset: str, find: str, replace: str, previewed: str) -> int:
        """Apply the previewed replacement to every caption it changes; refused when the captions changed since."""
        changes, digest = self.replace_preview(dataset, find, replace)
        if digest != previewed:
            raise CaptionRefused("The captions changed since the preview; preview the replacement again.")
        self._canonical(dataset)
        for key, before, after in changes:
            self.datasets.save_caption(dataset, key, after, loaded=caption_digest(before))
        return len(changes)

    # --- helpers -------------------------------------------------------------------------------------
    def _canonical(self, dataset: str) -> Path:
        root = self.datasets.path(dataset, write=True)
        try:
            layout = detect_layout(root)
        except DatasetError as exc:
            raise DatasetError(self.paths.redact(str(exc))) from None
        if layout is not Layout.CANONICAL:
            raise CaptionRefused(
                f"{dataset} is in the {layout.value} layout; import it into {DATASETS_DIR}/ to write its captions."
            )
        return root

    def _items(self, root: Path, prefix: str = ""):
        try:
            return list_items(root, prompt_prefix=prefix)
        except DatasetError as exc:
            raise DatasetError(self.paths.redact(str(exc))) from None


def _digest(changes: list[tuple[str, str, str]]) -> str:
    return hashlib.sha256(json.dumps(changes).encode()).hexdigest()[:16]


def _kill(process) -> None:
    """Its process group asked to end, then killed (child_processes.stop)."""
    child_processes.stop(process, STOP_GRACE_S)
