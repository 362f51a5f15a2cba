"""How a pre-trained tiny base is judged: its prompt embeddings told apart, and trainer.evaluate on held-out
shapes clips against a randomly initialised pipeline; the record (pretraining.json) and its PRETRAINING.md.

Evaluation is a floor above the tiny world: this package imports it, the tiny world never does."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from trainer import cosmos
from trainer.evaluate import EvalSettings, evaluate
from trainer.pretrain_tiny.data import NUM_FRAMES, SIZE
from trainer.pretrain_tiny.report import machine, report_markdown
from trainer.pretrain_tiny.settings import HELD_OUT_SEED_OFFSET, PretrainSettings
from trainer.tinyworld import model as tiny

PROMPT_PAIRS = (  # captions differing in one word: the DiT can only follow what the embeddings tell apart
    (
        "The left arm picks up the red apple and places it in the bowl.",
        "The right arm picks up the red apple and places it in the bowl.",
    ),
    ("A red circle moves to the left.", "A red circle moves to the right."),
    ("A red circle moves to the left.", "A blue circle moves to the left."),
)


@torch.no_grad()
def prompt_separation(pipe) -> list[dict]:
    """Per pair: relative L2 distance of the whole embedding, and of the most different token."""
    out = []
    for a, b in PROMPT_PAIRS:
        ea, eb = cosmos.encode_prompts(pipe, [a, b]).float()
        token = ((ea - eb).norm(dim=-1) / ea.norm(dim=-1)).max()
        out.append(
            {
                "a": a,
                "b": b,
                "relative_distance": round(float((ea - eb).norm() / ea.norm()), 4),
                "largest_token_distance": round(float(token), 4),
            }
        )
    return out


def score(model_dir: Path, held_out_dir: Path, clips: int) -> dict:
    """trainer.evaluate on held-out shapes clips: validation loss and generated-vs-real error."""
    settings = EvalSettings.from_preset(
        "tiny", model=str(model_dir), data=str(held_out_dir), max_clips=clips, guardrail=False
    )  # our own toy weights: not NVIDIA's model
    result = evaluate(settings)
    return {"base": result["variants"]["base"], "reference": result["reference"], "settings": result["settings"]}


def score_all(out_dir: Path, work_dir: Path, s: PretrainSettings, spec: tiny.TinySpec) -> dict:
    """The pretrained and a randomly initialised pipeline on held-out shapes clips (written as a dataset)."""
    from trainer.tinyworld.sample_datasets import make_shapes_dataset

    held_out_dir = work_dir / "shapes_held_out"
    make_shapes_dataset(
        held_out_dir, clips=s.held_out_clips, size=SIZE, num_frames=NUM_FRAMES, seed=s.seed + HELD_OUT_SEED_OFFSET
    )
    random_dir = tiny.build_tiny(work_dir / "random-init", spec)
    return {
        "pretrained": score(out_dir, held_out_dir, s.held_out_clips),
        "random_init": score(random_dir, held_out_dir, s.held_out_clips),
    }


def write_record(out_dir: Path, record: dict) -> None:
    (out_dir / "pretraining.json").write_text(json.dumps(record, indent=2) + "\n")
    (out_dir / "PRETRAINING.md").write_text(report_markdown(record))


def rescore(out_dir: Path, work_dir: Path) -> dict:
    """Score a base pre-trained with `score: false` (say on a machine without ffmpeg) and complete its report."""
    record = json.loads((out_dir / "pretraining.json").read_text())
    conditional_frames = tuple(map(tuple, record["settings"]["conditional_frames"]))  # JSON lists back to pairs
    s = PretrainSettings(**{**record["settings"], "conditional_frames": conditional_frames})
    t0 = time.perf_counter()
    record["held_out_scores"] = score_all(out_dir, work_dir, s, tiny.TinySpec(**record["spec"]))
    record["timings_s"]["scoring"] = round(time.perf_counter() - t0, 1)
    record["scoring_machine"] = machine()
    write_record(out_dir, record)
    return record
