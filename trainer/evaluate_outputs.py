"""What `evaluate` leaves besides its printed scores: progress events for a watcher (`--events`), the first
clip's comparison folder (`--out`) and each adapter's card (`--card`).

The comparison is the one `generate` writes (one mp4 per variant, compare.mp4, compare.json) for the first
evaluated clip, with the scores of the whole evaluation in compare.json under COMPARE_EVALUATION_KEY, so the
studio shows the table next to the videos it was measured on.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from trainer.model_card import EVALUATION_FILE
from trainer.spec.run_folder import (
    CARD_FILE,
    COMPARE_EVALUATION_KEY,
    COMPARE_RECORD_FILE,
    EVALUATE_EVENTS,
    read_card,
    write_json_atomic,
)

SCORE_KEYS = ("val_loss", "psnr", "ssim", "hand_accuracy")
CARD_SETTINGS = ("model", "steps", "guidance", "seed", "height", "width", "num_frames", "precision", "max_clips")


class EventPrinter:
    """Writes the events of `schema` (EVALUATE_EVENTS by default) as JSON lines to `out` (stdout by default)."""

    def __init__(self, out: TextIO | None = None, schema: dict[str, dict[str, str]] = EVALUATE_EVENTS):
        self.out = out or sys.stdout
        self.schema = schema

    def emit(self, event: str, **fields: Any) -> None:
        undeclared = sorted(set(fields) - set(self.schema[event]))
        if undeclared:
            raise ValueError(f"{event} event fields {undeclared} are not declared in trainer.spec.run_folder")
        self.out.write(json.dumps({"event": event, **fields}, default=str) + "\n")
        self.out.flush()


class ComparisonWriter:
    """`on_rendered` for evaluate(): writes the first clip's comparison into `out_dir`; `finish` adds the scores."""

    def __init__(self, renderer, out_dir: Path):
        self.renderer, self.out_dir = renderer, Path(out_dir)

    def __call__(self, index: int, request, rendered) -> None:
        if index == 0:
            request.out_dir = str(self.out_dir)
            self.renderer.write_comparison(request, rendered)

    def finish(self, result: dict) -> dict:
        path = self.out_dir / COMPARE_RECORD_FILE
        record = json.loads(path.read_text())
        record[COMPARE_EVALUATION_KEY] = result
        write_json_atomic(path, record)
        return record


def card_entry(result: dict, variant: str) -> dict:
    """The card's `evaluation`: the held-out data, the settings, this variant's scores and the base model's."""
    settings = result["settings"]
    return {
        "data": settings["data"],
        "clips": settings["clips"],
        "keys": settings["keys"],
        "settings": {k: settings.get(k) for k in CARD_SETTINGS},
        "scores": {k: result["variants"][variant].get(k) for k in SCORE_KEYS},
        "base": {k: result["variants"]["base"].get(k) for k in SCORE_KEYS},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def record_in_cards(adapters: list, result: dict) -> list[Path]:
    """Write each adapter's scores into its adapter_card.json (created when missing), and the whole result as its
    evaluation.json (what `publish` puts in the model card); returns the cards written."""
    written = []
    for choice in adapters:
        folder = Path(choice.path)
        write_json_atomic(folder / EVALUATION_FILE, result)
        card = read_card(folder)
        if not card and (folder / CARD_FILE).exists() and _damaged(folder / CARD_FILE):
            # read_card reads a damaged card as {}: writing that back would replace the user's file
            print(
                f"evaluate: {choice.name}'s {CARD_FILE} cannot be read as a card; it is left as it is, the "
                f"scores are in its {EVALUATION_FILE}",
                file=sys.stderr,
            )
            continue
        card["evaluation"] = card_entry(result, choice.name)
        write_json_atomic(folder / CARD_FILE, card)
        written.append(folder / CARD_FILE)
    return written


def _damaged(path: Path) -> bool:
    try:
        return not isinstance(json.loads(path.read_text()), dict)
    except (OSError, ValueError):
        return True
