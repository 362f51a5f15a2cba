"""Which checkpoint is best: every complete checkpoint of a run (and its final adapter) scored by `evaluate` as
one more variant, the scores against the training step, and the best step marked.

    python -m trainer evaluate --adapter runs/RUN --checkpoints all [--json]

Best means the lowest validation loss: the training objective on held-out clips, measured at fixed noise, the one
score that does not depend on the sampler. The generated clips' PSNR and hand accuracy are listed beside it.
"""

from __future__ import annotations

import json
from pathlib import Path

from trainer.spec.run_folder import ADAPTER_DIR, CARD_FILE, CHECKPOINTS_DIR, complete_checkpoints, folder_step

CHECKPOINT_CHOICES = ("none", "all")


def run_folder(adapter: str | Path) -> Path | None:
    """The run folder an --adapter value names (the run itself, its adapter/ or one of its checkpoints)."""
    folder = Path(adapter)
    if folder.name == ADAPTER_DIR or folder.parent.name == CHECKPOINTS_DIR:
        folder = folder.parent if folder.name == ADAPTER_DIR else folder.parent.parent
    return folder if (folder / CHECKPOINTS_DIR).is_dir() or (folder / ADAPTER_DIR).is_dir() else None


def sweep(run_dir: Path) -> list[tuple[int, Path]]:
    """(step, folder) of each complete checkpoint of the run, by step, then the final adapter at its card's steps
    (when it holds a step no checkpoint has)."""
    found = [(folder_step(p), p) for p in complete_checkpoints(run_dir)]
    final = run_dir / ADAPTER_DIR
    try:
        steps = int(json.loads((final / CARD_FILE).read_text())["steps"])
    except (OSError, ValueError, KeyError, TypeError):
        steps = None
    if steps is not None and steps not in {s for s, _ in found}:
        found.append((steps, final))
    return sorted(found, key=lambda item: item[0])


def curve(result: dict, steps: dict[str, int]) -> dict:
    """{"points": [{"step", "variant", "val_loss", "psnr", "hand_accuracy"}], "best": one of them} from an
    evaluate result and each swept variant's step (by variant name); the base is step 0."""
    points = [
        {
            "step": step,
            "variant": name,
            **{k: result["variants"][name][k] for k in ("val_loss", "psnr", "hand_accuracy")},
        }
        for name, step in sorted({"base": 0, **steps}.items(), key=lambda item: item[1])
        if name in result["variants"]
    ]
    trained = [p for p in points if p["variant"] != "base"] or points
    best = min(trained, key=lambda p: (p["val_loss"], -p["step"]))
    return {"points": points, "best": best, "best_by": "val_loss"}


def format_curve(sweep_result: dict) -> str:
    lines = [f"{'step':>6} {'variant':<28} {'val_loss':>9} {'PSNR dB':>8} {'hand acc':>9}"]
    for p in sweep_result["points"]:
        hand = "n/a" if p["hand_accuracy"] is None else f"{p['hand_accuracy']:.0%}"
        mark = "  <- best" if p is sweep_result["best"] or p == sweep_result["best"] else ""
        lines.append(f"{p['step']:>6} {p['variant'][:28]:<28} {p['val_loss']:>9.4f} {p['psnr']:>8.2f} {hand:>9}{mark}")
    best = sweep_result["best"]
    lines.append(f"best checkpoint (lowest validation loss): {best['variant']} at step {best['step']}")
    return "\n".join(lines)
