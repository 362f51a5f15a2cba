"""The Evaluate action of Generate & compare: the same variant picker and settings, scored on held-out clips.

`trainer evaluate` runs in a child process (studio.evaluation); the page shows its progress, then the first
clip's videos (in the tab's results area) with the scores table next to them. The handler streams dicts of
OUTPUTS by name, as the Generate button's does. The handlers get the `Page`: the studio and the helpers this
tab shares with the Generate button (tab_generate builds it, so neither module imports the other's handlers).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import gradio as gr
import pandas as pd

from studio.evaluation import HELD_OUT_SAMPLE, MAX_CLIPS
from studio.folders import REFUSALS
from studio.named_number import named_number
from studio.named_outputs import NamedOutputs
from studio.workspace import Studio
from trainer.spec.embedded import TINY_MODEL
from trainer.spec.generate_settings import SETTING_NAMES

SCORE_COLUMNS = ["variant", "val loss", "PSNR (dB)", "SSIM", "hand accuracy"]
REFERENCE_ROWS = (
    ("(real clip through the VAE)", "vae_psnr", "vae_ssim", "hand_accuracy"),
    ("(first frame held still)", "static_psnr", "static_ssim", None),
)
INPUTS = (*SETTING_NAMES, "adapters", "strengths", "eval_data", "eval_clips", "eval_checkpoints")
OUTPUTS = ("eval_status", "result", "summary", "files", "record_json", "scores", "eval_curve")
CURVE_SERIES = {"val_loss": "val loss", "psnr": "PSNR (dB)", "hand_accuracy": "hand accuracy"}
BEST = "best step"


@dataclass(frozen=True)
class Page:
    studio: Studio
    owner: Callable  # gr.Request -> the browser session that may cancel
    strengths: Callable  # the strength table -> {variant: strength}
    results: Callable  # (compare.json record, folder, redact) -> the results area's outputs by name
    user_error: Callable  # message -> gr.Error


def scores_table(result: dict) -> pd.DataFrame:
    """One row per variant (val loss, PSNR, SSIM, hand accuracy), then the reference rows evaluate reports."""
    scale = {a["name"]: a["scale"] for a in result["settings"].get("adapters", [])}
    rows = [
        [
            name if name not in scale else f"{name} (strength {scale[name]:g})",
            round(v["val_loss"], 4),
            round(v["psnr"], 2),
            round(v["ssim"], 3),
            _share(v["hand_accuracy"]),
        ]
        for name, v in result["variants"].items()
    ]
    ref = result["reference"]
    for label, psnr, ssim, hand in REFERENCE_ROWS:
        rows.append([label, None, round(ref[psnr], 2), round(ref[ssim], 3), _share(ref[hand]) if hand else ""])
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def curve_frame(sweep: dict) -> pd.DataFrame:
    """Rows (step, value, series) of each score against the training step (`--checkpoints all`'s "checkpoints"),
    each score scaled to its own range (0 worst to 1 best, so the three share one plot; the table has the
    values), and the best step as a vertical tick."""
    rows = []
    for key, series in CURVE_SERIES.items():
        points = [(p["step"], p[key]) for p in sweep["points"] if p[key] is not None]
        if not points:
            continue
        low, high = min(v for _, v in points), max(v for _, v in points)
        for step, value in points:
            share = 0.5 if high == low else (value - low) / (high - low)
            rows.append((step, 1 - share if key == "val_loss" else share, series))
    best = sweep["best"]["step"]
    rows += [(best, -0.05, BEST), (best, 1.05, BEST)]
    return pd.DataFrame(rows, columns=["step", "score (0 worst, 1 best)", "series"])


def best_line(sweep: dict) -> str:
    best = sweep["best"]
    hand = "" if best["hand_accuracy"] is None else f", hand accuracy {best['hand_accuracy']:.0%}"
    return (
        f"**Best checkpoint: {best['variant']}** (step {best['step']}: val loss {best['val_loss']:.4f}, PSNR "
        f"{best['psnr']:.2f} dB{hand}). Pick it in the variants above to compare it, or export it from Adapters."
    )


def evaluate(page: Page, session: gr.Request, progress=gr.Progress(), **form):
    """Stream the child's progress, then the comparison of the first clip and the scores table."""
    studio = page.studio
    settings = {name: form[name] for name in SETTING_NAMES} | {"model": form["model"] or TINY_MODEL}
    variants = list(form["adapters"] or [])
    checkpoints = bool(form.get("eval_checkpoints"))
    clips = form["eval_clips"]
    clips = int(clips) if isinstance(clips, (int, float)) and float(clips).is_integer() else -1  # -1: refused, named
    try:
        events = studio.evaluation.evaluate(
            settings,
            variants,
            page.strengths(form["strengths"]),
            form["eval_data"] or "",
            clips,
            owner=page.owner(session),
            checkpoints=checkpoints,
        )
        for event in events:
            if event["event"] == "progress":
                total = event["clips"] * (len(variants) + 1) * event["steps"]
                done = ((event["clip"] - 1) * (len(variants) + 1) + _index(event["variant"], variants)) * event["steps"]
                progress((done + event["step"], total), desc=event["variant"], unit="steps")
                yield {
                    "eval_status": f"Evaluating clip {event['clip']} of {event['clips']} ({event['key']}): "
                    f"**{event['variant']}** step {event['step']}/{event['steps']}"
                }
            elif event["event"] == "done":
                shown = page.results(event["record"], Path(event["out_dir"]), studio.datasets.paths.redact)
                where = "" if studio.workspace.read_only else " and into each adapter's card"
                used = event["result"]["settings"]
                data = studio.datasets.paths.redact(str(used["data"]))
                sweep = event["result"].get("checkpoints")
                yield {
                    **{k: v for k, v in shown.items() if k != "status"},
                    "scores": scores_table(event["result"]),
                    "eval_status": f"Scored on {used['clips']} clip(s) of {data}; saved "
                    f"in `generations/{Path(event['out_dir']).name}/compare.json`{where if not sweep else ''}. "
                    "The videos are the first clip's." + (f"\n\n{best_line(sweep)}" if sweep else ""),
                    "eval_curve": gr.update(value=curve_frame(sweep), visible=True) if sweep else gr.skip(),
                }
    except REFUSALS as exc:
        raise page.user_error(studio.datasets.paths.redact(str(exc))) from None


def _index(variant: str, variants: list[str]) -> int:
    return 0 if variant == "base" or variant not in variants else variants.index(variant) + 1


def cancel(page: Page, request: gr.Request):
    if page.studio.evaluation.cancel(page.owner(request) or ""):
        return "Cancelling the evaluation."
    return "Nothing to cancel: no evaluation of this page is running."


def controls(studio: Studio) -> SimpleNamespace:
    """The Evaluate row, under the Generate button: held-out data, clips, Evaluate and Cancel, its status."""
    with gr.Accordion("Evaluate on held-out clips", open=True):
        with gr.Row(equal_height=True):
            data = gr.Dropdown(
                studio.datasets.choices(),
                value=HELD_OUT_SAMPLE,
                label="held-out clips",
                scale=3,
                info="Clips none of the variants trained on.",
                elem_id="eval-data",
            )
            clips = named_number(
                2,
                precision=0,
                minimum=1,
                maximum=MAX_CLIPS,
                label="clips",
                scale=1,
                info="The first N clips.",
                elem_id="eval-clips",
            )
        checkpoints = gr.Checkbox(
            False,
            label="every checkpoint of the picked runs",
            info="Scores each complete checkpoint (and the final adapter) of the runs picked above, plots the "
            "scores against the step and marks the best one (lowest val loss).",
            elem_id="eval-checkpoints",
        )
        with gr.Row():
            go = gr.Button("Evaluate", elem_id="eval-go", scale=3)
            stop = gr.Button("Cancel evaluation", elem_id="eval-cancel", scale=1)
        status = gr.Markdown(
            "Scores the base model and the chosen variants with the settings on the left: val loss,"
            " PSNR and SSIM against the real clip, and which arm moves on the sample world.",
            elem_id="eval-status",
        )
        curve = gr.LinePlot(
            None,
            x="step",
            y="score (0 worst, 1 best)",
            color="series",
            label="scores against the training step (each scaled to its own range; the table has the values)",
            height=260,
            x_axis_format="d",
            visible=False,
            elem_id="eval-curve",
        )
    return SimpleNamespace(
        eval_data=data,
        eval_clips=clips,
        eval_checkpoints=checkpoints,
        eval_go=go,
        eval_stop=stop,
        eval_status=status,
        eval_curve=curve,
    )


def table() -> gr.Dataframe:
    return gr.Dataframe(
        pd.DataFrame(columns=SCORE_COLUMNS),
        label="evaluation (scores on held-out clips)",
        interactive=False,
        elem_id="eval-scores",
    )


def wire(page: Page, demo: gr.Blocks, ui: dict[str, Any], bound) -> None:
    """Connect the controls; `ui` holds every component of the tab by name, `bound(fn, page)` binds the page (named_outputs.bind)."""
    studio = page.studio
    outputs = NamedOutputs(**{name: ui[name] for name in OUTPUTS})
    ui["eval_go"].click(
        outputs.wrap(bound(evaluate, page)),
        inputs_kwargs={n: ui[n] for n in INPUTS},
        outputs=outputs.components,
        api_name="evaluate",
        concurrency_limit=None,
    )
    ui["eval_stop"].click(bound(cancel, page), None, ui["eval_status"], api_name="cancel_evaluation")
    private = {"api_visibility": "private"}
    demo.load(lambda: gr.update(choices=studio.datasets.choices()), None, ui["eval_data"], **private)
    # A new comparison is not what the last scores were measured on.
    ui["go"].click(lambda: pd.DataFrame(columns=SCORE_COLUMNS), None, ui["scores"], **private)
