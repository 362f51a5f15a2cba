"""Captions written by a vision-language model: which clips need one, the file each goes to, the prompt, and what
provenance.json records. Torch-free: the studio plans, reviews and accepts captions with these functions, and
`trainer caption` (trainer/captioning.py) writes them.

A caption goes where trainer.datasets reads it: metas/<key>.txt (canonical layout), x.txt beside x.mp4 (flat),
or captions/<stem>.json with one prompt per variant (captions_json, or a canonical dataset with no caption yet
when several variants are asked for). Every file is written to a hidden temporary name in its folder and renamed,
so a cancelled run never leaves half a caption, and a clip that has a caption is left alone unless overwriting
was asked for.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from trainer import __version__
from trainer.datasets import Layout, detect_layout, list_items
from trainer.lerobot import PROVENANCE_FILE
from trainer.spec.config import DEFAULT_HUB_MODEL, CaptionVariant, resolve_revision
from trainer.spec.embedded import TINY_MODEL

# Cosmos-Reason1 is a Qwen2.5-VL post-trained on physical-AI video, and what NVIDIA captions its data with.
DEFAULT_VLM = "nvidia/Cosmos-Reason1-7B"
VARIANTS: tuple[str, ...] = get_args(CaptionVariant)
CaptionFormat = Literal["txt", "json"]
PROVENANCE_KEY = "captions"  # provenance.json: one entry per captioning run
FRAMES_PER_CLIP = 8
TINY_IS_NOISE = (
    "the embedded tiny model's text encoder has random weights, so its captions would be noise; caption with a "
    f"real vision-language model (--model {DEFAULT_VLM}, or a Cosmos Predict 2.5 pipeline whose text encoder is used)"
)

LENGTH_PLACEHOLDER = "{length}"
DEFAULT_TEMPLATE = """These are frames sampled in order from one short robot video, the first frame first.
Describe the video as a caption for training a video generation model. Say:
- the embodiment: what kind of robot it is (humanoid, single arm, two arms, mobile base) and its hands or grippers;
- which arm or gripper acts (left, right or both) and how it grasps;
- the objects: their colours, shapes, materials and where they are;
- the motion, in the order it happens, with directions;
- the camera: its viewpoint (head-mounted, wrist, third-person) and whether it moves.
Describe only what is visible; do not guess intentions or name what you cannot see. Write plain prose, no lists.
{length}"""
LENGTHS: dict[str, str] = {
    "long": "Write one detailed paragraph of 80 to 150 words.",
    "medium": "Write two or three sentences.",
    "short": "Write one sentence of at most 20 words.",
}
MAX_NEW_TOKENS: dict[str, int] = {"long": 320, "medium": 160, "short": 60}


class CaptionError(ValueError):
    """Captioning that cannot start: one sentence naming the dataset, model or option, and the fix."""


def instruction(template: str, variant: str) -> str:
    """The prompt for one variant: the template with {length} replaced (or the length rule appended)."""
    if LENGTH_PLACEHOLDER in template:
        return template.replace(LENGTH_PLACEHOLDER, LENGTHS[variant]).strip()
    return f"{template.strip()}\n{LENGTHS[variant]}"


def parse_variants(text: str | None) -> list[str] | None:
    """`long,medium,short` as a list in that order; None for the layout's default. CaptionError names a bad one."""
    if not text or not text.strip():
        return None
    asked = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in asked if v not in VARIANTS]
    if bad or not asked:
        raise CaptionError(f"--variants takes a comma-separated subset of {','.join(VARIANTS)} (got {text!r}).")
    return [v for v in VARIANTS if v in asked]


# --- which model ---------------------------------------------------------------------------------------
def default_model(base_model: str | None = None) -> str:
    """The caption model meant when none is named: the text encoder of a real base model (a Cosmos pipeline whose
    text encoder is a Qwen2.5-VL), the default base model's when it is in the local cache, else DEFAULT_VLM."""
    if base_model and base_model != TINY_MODEL:
        return base_model
    return DEFAULT_HUB_MODEL if in_local_cache(DEFAULT_HUB_MODEL) else DEFAULT_VLM


def in_local_cache(model: str, revision: str | None = None) -> bool:
    """Whether a Hub model's captioning files (a VLM's config, or a pipeline's text encoder) are cached here."""
    from huggingface_hub import try_to_load_from_cache

    revision = resolve_revision(model, revision)
    try:
        return any(
            isinstance(try_to_load_from_cache(model, name, revision=revision), str)
            for name in ("config.json", "text_encoder/config.json")
        )
    except ValueError:  # not a valid repo id
        return False


def local_model_problem(folder: Path) -> str | None:
    """Why a local folder cannot caption (None when it holds a Qwen2.5-VL, or a pipeline whose text encoder is)."""
    config = (
        folder / "text_encoder" / "config.json" if (folder / "model_index.json").is_file() else folder / "config.json"
    )
    try:
        model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        return f"{folder} holds no readable config.json; give a Qwen2.5-VL model folder or a Cosmos pipeline folder"
    if model_type != "qwen2_5_vl":
        return f"{folder} is a {model_type!r} model; captioning needs a Qwen2.5-VL-family model (e.g. {DEFAULT_VLM})"
    return None


# --- which clips, which files --------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    key: str
    video: Path
    path: Path  # the caption file written for this clip


@dataclass
class Plan:
    root: Path
    layout: Layout
    format: CaptionFormat
    variants: list[str]
    todo: list[Target] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # keys left as they are


def plan(
    root: str | Path, variants: list[str] | None = None, overwrite: bool = False, out: str | Path | None = None
) -> Plan:
    """Which clips of the dataset get a caption, and the file each goes to (in `out` instead, when given: a folder
    of proposals named <key>.txt / <key>.json). A clip whose caption file holds text is skipped unless
    `overwrite`; with `out`, so is a clip that already has a proposal there (a run can be resumed)."""
    root = Path(root)
    layout = detect_layout(root)
    if layout is Layout.METADATA_CSV:
        raise CaptionError(
            f"{root} keeps its captions in metadata.csv; import it with `python -m trainer import-data` first to get "
            "one metas/<clip>.txt per clip, then caption the import."
        )
    fmt = _format(root, layout, variants)
    variants = variants or (list(VARIANTS) if fmt == "json" else ["long"])
    if fmt == "txt" and len(variants) > 1:
        raise CaptionError(
            f"{root} ({layout.value} layout) keeps one plain-text caption per clip; pass one variant "
            "(--variants long), or use captions/*.json for several."
        )
    result = Plan(root, layout, fmt, variants)
    for item in list_items(root, variants[0]):
        stem = item.video.stem
        if fmt == "json":
            own = root / "captions" / f"{stem}.json"
        elif layout is Layout.FLAT:
            own = item.video.with_suffix(".txt")
        else:
            own = root / "metas" / f"{stem}.txt"
        path = own if out is None else Path(out) / f"{item.key}.{fmt}"
        has = _has_text(own) or (out is not None and _has_text(path))
        if has and not overwrite:
            result.skipped.append(item.key)
        else:
            result.todo.append(Target(item.key, item.video, path))
    return result


def _format(root: Path, layout: Layout, variants: list[str] | None) -> CaptionFormat:
    if layout is Layout.CAPTIONS_JSON:
        return "json"
    several = variants is not None and variants != ["long"]
    if layout is Layout.CANONICAL and several and not any(_has_text(p) for p in (root / "metas").glob("*.txt")):
        return "json"  # no text caption yet: captions/ (which wins over metas/) hides nothing
    return "txt"


def _has_text(path: Path) -> bool:
    try:
        return bool(path.read_text(encoding="utf-8", errors="replace").strip())
    except OSError:
        return False


def write_caption(target: Path, captions: dict[str, str], fmt: CaptionFormat) -> None:
    """Write one clip's captions, atomically. A JSON file keeps the keys it had that were not rewritten."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "txt":
        text = next(iter(captions.values())).strip() + "\n"
    else:
        try:
            old = json.loads(target.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = {}
        text = json.dumps({**(old if isinstance(old, dict) else {}), **captions}, indent=2, ensure_ascii=False) + "\n"
    write_text_atomic(target, text)


def write_text_atomic(target: Path, text: str) -> None:
    """`text` into `target` through a hidden temporary file in the same folder and a rename: a reader (or a run
    cancelled mid-way) sees the old file or the new one, never half of one. Hidden files are never clips or captions."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


# --- provenance --------------------------------------------------------------------------------------
def caption_record(
    model: str, revision: str | None, commit: str | None, template: str, variants: list[str], frames: int
) -> dict:
    """One captioning run as provenance.json records it; `clips` grows as captions are written."""
    return {
        "id": uuid.uuid4().hex[:12],
        "model": model,
        "revision": revision,
        "commit": commit,
        "template": template,
        "variants": variants,
        "frames_per_clip": frames,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "project_version": __version__,
        "clips": [],
    }


def record_captions(folder: Path, record: dict) -> None:
    """Put `record` into folder/provenance.json under "captions" (replacing the entry with its id), keeping every
    other key (an imported LeRobot dataset's source, camera and episodes)."""
    path = Path(folder) / PROVENANCE_FILE
    try:
        provenance = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        provenance = {}
    if not isinstance(provenance, dict):
        provenance = {}
    runs = [r for r in provenance.get(PROVENANCE_KEY) or [] if isinstance(r, dict) and r.get("id") != record["id"]]
    provenance[PROVENANCE_KEY] = [*runs, record]
    write_text_atomic(path, json.dumps(provenance, indent=2, ensure_ascii=False) + "\n")


def read_captions_record(folder: Path) -> list[dict]:
    """The captioning runs provenance.json records (oldest first); [] when there are none."""
    try:
        provenance = json.loads((Path(folder) / PROVENANCE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    runs = provenance.get(PROVENANCE_KEY) if isinstance(provenance, dict) else None
    return [r for r in runs or [] if isinstance(r, dict)]
