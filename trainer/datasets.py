"""The clips and captions of a dataset folder, in whichever layout the user brings.

Accepted layouts, detected in this order (the first that matches wins):

    captions_json  videos/*.mp4 + captions/<stem>.json   Cosmos Predict 2.5's JSON captions; `caption_variant`
                                                          picks the long, medium or short prompt
    canonical      videos/*.mp4 + metas/<stem>.txt       what import-data writes
    metadata_csv   *.mp4 anywhere below + metadata.csv   the Hub layout of nvidia/GR1-100
    flat           x.mp4 + x.txt side by side

captions/ wins over metas/ as in the reference loader (cosmos-predict2.5's VideoDataset). A caption JSON is
either flat, {"long": ..., "medium": ..., "short": ...}, or nested one level under the captioning model's name
as cosmos-predict2.5 writes it, {"qwen3_vl_30b_a3b": {"long": ...}}. A variant is found under the key
`<variant>`, `<variant>_prompt` or `<variant>_caption`; a file with no variant keys at all may hold its one
caption under "caption", "prompt" or "text". A missing variant is reported, never replaced by another one.

Nothing here decodes more than it must: `list_items` only reads captions, `check_items` decodes every clip.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from pathlib import Path, PurePosixPath
from typing import get_args

from trainer.spec.bounds import long_text_problem
from trainer.spec.config import CaptionVariant
from trainer.video import VideoError, probe_video

METADATA_CSV = "metadata.csv"
VIDEO_COLUMNS = ("file_name", "filename", "video", "video_path", "video_file", "path")
PROMPT_COLUMNS = ("prompt", "caption", "text")
SINGLE_CAPTION_KEYS = ("caption", "prompt", "text")
KEY_SEPARATOR = "__"  # joins sub-folders into a key, so a key is always one file name


class Layout(Enum):
    CAPTIONS_JSON = "captions_json"
    CANONICAL = "canonical"
    METADATA_CSV = "metadata_csv"
    FLAT = "flat"


LAYOUT_HELP = (
    "videos/*.mp4 + metas/*.txt, videos/*.mp4 + captions/*.json, *.mp4 files + metadata.csv "
    "(with a video column and a prompt column), or x.mp4 + x.txt side by side"
)


class DatasetError(ValueError):
    """A dataset folder that cannot be listed at all; the message names the folder and the fix."""


@dataclass(frozen=True)
class Item:
    video: Path
    caption: str | None  # prompt_prefix applied; None when missing or unusable
    key: str  # unique, stable, one file name: the clip's path below its folder, without .mp4
    caption_problem: str | None = None  # why caption is None


@dataclass
class ItemReport:
    video: str
    frames: int | None  # None when the clip does not decode
    fps: float | None
    width: int | None
    height: int | None
    caption: str | None
    problem: str | None  # every reason the clip cannot be trained on, joined by "; "; None when usable
    key: str = ""
    note: str | None = None  # worth knowing, not a problem (e.g. the clip will be upscaled)

    @property
    def usable(self) -> bool:
        return self.problem is None


def detect_layout(root: str | Path) -> Layout:
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"{root} does not exist; pass the dataset folder.")
    if not root.is_dir():
        raise DatasetError(f"{root} is a file, not a dataset folder; unpack an archive with import-data first.")
    if (root / "videos").is_dir():
        if any(_files(root / "captions", ".json")):
            return Layout.CAPTIONS_JSON
        if (root / "metas").is_dir():
            return Layout.CANONICAL
    if (root / METADATA_CSV).is_file():
        return Layout.METADATA_CSV
    if any(_files(root, ".mp4")):
        return Layout.FLAT
    raise DatasetError(f"{root} matches no accepted dataset layout; use {LAYOUT_HELP}.")


def list_items(root: str | Path, caption_variant: CaptionVariant = "long", prompt_prefix: str = "") -> list[Item]:
    """Every clip of the dataset with its caption, sorted by key; raises DatasetError for an unknown layout."""
    if caption_variant not in get_args(CaptionVariant):
        raise ValueError(f"caption_variant must be one of {get_args(CaptionVariant)} (got {caption_variant!r})")
    root = Path(root)
    layout = detect_layout(root)
    if layout is Layout.CAPTIONS_JSON:
        captions = root / "captions"
        found = [(v, *_json_caption(root, captions / f"{v.stem}.json", caption_variant)) for v in _videos(root)]
    elif layout is Layout.CANONICAL:
        found = [(v, *_text_caption(root, root / "metas" / f"{v.stem}.txt")) for v in _videos(root)]
    elif layout is Layout.METADATA_CSV:
        found = _csv_items(root)
    else:
        found = [(v, *_text_caption(root, v.with_suffix(".txt"))) for v in _files(root, ".mp4")]
    found = [(video, *_bounded(caption, problem)) for video, caption, problem in found]
    keys = _keys([video for video, _, _ in found])
    items = [
        Item(video, prompt_prefix + caption if caption else None, key, problem)
        for (video, caption, problem), key in zip(found, keys)
    ]
    return sorted(items, key=lambda item: item.key)


def check_items(
    items: list[Item], num_frames: int | None = None, height: int | None = None, width: int | None = None
) -> list[ItemReport]:
    """Decode every clip and say, per clip, whether it can be trained on and why not.

    Problems: the clip does not decode, has fewer than num_frames frames, or has no usable caption. A clip
    smaller than height x width is fine (clips are resized) and only gets a note.
    """
    workers = min(8, os.cpu_count() or 1)  # each probe is one ffmpeg process; threads only wait on them
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda item: _check(item, num_frames, height, width), items))


def dataset_fingerprint(items: list[Item]) -> dict:
    """sha256 of every clip and caption (as trained on, prefix included) and one digest over all of them."""
    entries = []
    combined = hashlib.sha256()
    for item in sorted(items, key=lambda item: item.key):
        video_sha = sha256_file(item.video)
        caption_sha = hashlib.sha256(item.caption.encode()).hexdigest() if item.caption is not None else None
        entries.append({"key": item.key, "video_sha256": video_sha, "caption_sha256": caption_sha})
        combined.update(f"{item.key}\t{video_sha}\t{caption_sha or '-'}\n".encode())
    return {"algorithm": "sha256", "count": len(entries), "digest": combined.hexdigest(), "items": entries}


# --- listing ---------------------------------------------------------------------------------------
def _files(folder: Path, suffix: str) -> list[Path]:
    if not folder.is_dir():
        return []
    # Hidden files are never clips: macOS leaves "._name.mp4" resource forks beside real ones.
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == suffix and not p.name.startswith(".")
    )


def _videos(root: Path) -> list[Path]:
    return _files(root / "videos", ".mp4")


def _bounded(caption: str | None, problem: str | None) -> tuple[str | None, str | None]:
    """A caption longer than any prompt may be is not trained on (nor shown whole): the clip is reported."""
    if caption is not None and long_text_problem(caption):
        return None, f"caption too long ({long_text_problem(caption)})"
    return caption, problem


def _outside(root: Path, path: Path) -> bool:
    """Whether `path`, symlinks resolved, leaves the dataset: such a caption or metadata file is never read (a
    link out of a dataset someone uploaded would show the server's files in the check report)."""
    try:
        return not path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # a symlink loop
        return True


def _text_caption(root: Path, path: Path) -> tuple[str | None, str | None]:
    name = path.relative_to(root).as_posix()
    if _outside(root, path):
        return None, f"unreadable caption ({name} points outside the dataset; it is not read)"
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None, f"missing caption (no {name})"
    except UnicodeDecodeError:
        return None, f"unreadable caption ({name} is not UTF-8 text)"
    except OSError as exc:
        return None, f"unreadable caption ({name}: {exc.strerror})"
    return (text, None) if text else (None, f"empty caption ({name})")


def _json_caption(root: Path, path: Path, variant: str) -> tuple[str | None, str | None]:
    name = path.relative_to(root).as_posix()
    if _outside(root, path):
        return None, f"unreadable caption ({name} points outside the dataset; it is not read)"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, f"missing caption (no {name})"
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"unreadable caption ({name} is not valid UTF-8 JSON: {exc})"
    if not isinstance(data, dict):
        return None, f"unreadable caption ({name} must hold an object of prompts)"
    all_variants = get_args(CaptionVariant)
    prompts = data
    if not _variant_keys(data, all_variants):  # nested under the captioning model's name
        prompts = next((v for v in data.values() if isinstance(v, dict) and _variant_keys(v, all_variants)), data)
    present = _variant_keys(prompts, all_variants)
    if present:
        key = next((k for k in _variant_keys(prompts, (variant,))), None)
        if key is None:
            has = ", ".join(sorted({k.split("_")[0] for k in present}))
            return None, f"missing caption ({name} has no {variant!r} prompt, only {has}: change caption_variant)"
    else:
        key = next((k for k in SINGLE_CAPTION_KEYS if k in prompts), None)
        if key is None:
            return None, f"missing caption ({name} has no long/medium/short prompt nor a 'caption' key)"
    text = prompts[key]
    if not isinstance(text, str):
        return None, f"unreadable caption ({name}: {key!r} is not text)"
    return (text.strip(), None) if text.strip() else (None, f"empty caption ({name}: {key!r})")


def _variant_keys(prompts: dict, variants: tuple[str, ...]) -> list[str]:
    return [f"{v}{suffix}" for v in variants for suffix in ("", "_prompt", "_caption") if f"{v}{suffix}" in prompts]


def _csv_items(root: Path) -> list[tuple[Path, str | None, str | None]]:
    """Rows of metadata.csv matched to the clips below root; clips the csv does not name are kept, uncaptioned."""
    clips = sorted(p for p in root.rglob("*") if p.suffix.lower() == ".mp4" and p.is_file() and not _hidden(root, p))
    by_name: dict[str, list[Path]] = {}
    for clip in clips:
        by_name.setdefault(clip.name, []).append(clip)
    found: dict[Path, tuple[str | None, str | None]] = {}
    if _outside(root, root / METADATA_CSV):
        raise DatasetError(f"{METADATA_CSV} points outside the dataset, so it is not read; put the file itself there.")
    for file_value, prompt in _csv_rows(root / METADATA_CSV):
        if not file_value:
            continue  # a blank line or a row without a file names no clip
        video = _resolve_csv_video(root, file_value, by_name)
        if video in found:
            continue  # the first row for a clip wins
        text = prompt.strip()
        found[video] = (text, None) if text else (None, f"empty caption (its {METADATA_CSV} row has no prompt)")
    for clip in clips:
        found.setdefault(clip, (None, f"missing caption (not listed in {METADATA_CSV})"))
    return [(video, caption, problem) for video, (caption, problem) in found.items()]


def _csv_rows(path: Path) -> list[tuple[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f, restkey="__rest__")
            columns = {(c or "").strip().lower(): c for c in reader.fieldnames or []}
            video_col = next((columns[c] for c in VIDEO_COLUMNS if c in columns), None)
            prompt_col = next((columns[c] for c in PROMPT_COLUMNS if c in columns), None)
            if video_col is None or prompt_col is None:
                raise DatasetError(
                    f"{path} has columns {list(columns) or 'none'}; it needs a video column "
                    f"({'/'.join(VIDEO_COLUMNS)}) and a prompt column ({'/'.join(PROMPT_COLUMNS)}): rename them."
                )
            prompt_is_last = prompt_col == reader.fieldnames[-1]
            rows = []
            for row in reader:
                prompt = row.get(prompt_col) or ""
                if prompt_is_last and row.get("__rest__"):  # an unquoted prompt with commas in it
                    prompt = ",".join([prompt, *row["__rest__"]])
                rows.append(((row.get(video_col) or "").strip(), prompt))
            return rows
    except UnicodeDecodeError:
        raise DatasetError(f"{path} is not UTF-8 text; save it as UTF-8 CSV.") from None
    except csv.Error as exc:
        raise DatasetError(f"{path} is not valid CSV ({exc}); fix the file.") from None


def _resolve_csv_video(root: Path, value: str, by_name: dict[str, list[Path]]) -> Path:
    """The clip a csv row names: by path below root, else by its unique file name (clips moved into videos/)."""
    relative = PurePosixPath(value.replace("\\", "/"))
    inside = value and not relative.is_absolute() and ".." not in relative.parts
    if inside and (root / relative).is_file():
        return root / relative
    same_name = by_name.get(relative.name, [])
    if len(same_name) == 1:
        return same_name[0]
    # Not found: reported where the row says, and a path leaving the folder is kept inside it.
    return root / relative if inside else root / relative.name


def _hidden(root: Path, path: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _keys(videos: list[Path]) -> list[str]:
    """Each clip's path below the clips' common folder, without .mp4, sub-folders joined by KEY_SEPARATOR."""
    if not videos:
        return []
    common = Path(os.path.commonpath([v.parent for v in videos]))
    keys = [KEY_SEPARATOR.join(v.relative_to(common).with_suffix("").parts) for v in videos]
    seen: dict[str, Path] = {}
    for key, video in zip(keys, videos):
        if key in seen:
            raise DatasetError(f"{seen[key]} and {video} both map to the clip name {key!r}; rename one of them.")
        seen[key] = video
    return keys


# --- checking --------------------------------------------------------------------------------------
def _check(item: Item, num_frames: int | None, height: int | None, width: int | None) -> ItemReport:
    problems = []
    report = ItemReport(str(item.video), None, None, None, None, item.caption, None, key=item.key)
    try:
        info = probe_video(item.video)
    except VideoError as exc:
        problems.append(f"unreadable video: {exc.reason}")
    else:
        report.frames, report.fps, report.width, report.height = info.frames, info.fps, info.width, info.height
        if num_frames is not None and info.frames < num_frames:
            problems.append(f"too short: {info.frames} frames, needs {num_frames}")
        if (height and info.height < height) or (width and info.width < width):
            report.note = f"smaller than {width or info.width}x{height or info.height}: will be upscaled"
    if item.caption is None:
        problems.append(item.caption_problem or "missing caption")
    report.problem = "; ".join(problems) or None
    return report


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in blocks (clips and weights can be large)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def relative_name(path: str | Path, root: Path) -> str:
    """`path` as written inside `root` (posix), or unchanged when it lies elsewhere: for reports and tables."""
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return str(path)
