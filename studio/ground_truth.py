"""The real clip beside the generated ones: when a generation starts from a dataset clip's frame (or its first
clip), the comparison shows what really happened next, as its own labelled column in the synced playback.

Torch-free. A pick remembers where its file came from, keyed by the file's content (Gradio hands the handler a
copy of the picked file, never the same path); a generation whose first frame or clip has a remembered digest
gets the clip's frames from that frame on, at the generated size, as one more mp4 in its folder.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image

from studio.folders import REFUSALS
from trainer.video import VideoError, read_frames, write_video

PICKS_FILE = "picks.json"  # in the generations' inputs folder: digest -> {"dataset", "clip", "frame"}
MAX_PICKS = 512  # the oldest are forgotten: the file stays small whatever a visitor picks
TRUTH_FILE = "real-clip.mp4"


def _digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def remember(picks_dir: Path, file: str | Path, dataset: str, clip: str, frame: int) -> None:
    """Note that `file` (a frame PNG or a clip) is frame `frame` on of `clip` in `dataset`."""
    path = Path(picks_dir) / PICKS_FILE
    try:
        picks = json.loads(path.read_text())
    except (OSError, ValueError):
        picks = {}
    key = _digest(file)
    picks.pop(key, None)  # a pick made again becomes the newest
    picks[key] = {"dataset": dataset, "clip": clip, "frame": int(frame)}
    picks = dict(list(picks.items())[-MAX_PICKS:])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(picks))
    tmp.replace(path)


def recall(picks_dir: Path, file: str | Path | None) -> dict | None:
    """Where `file` came from, if a pick made it (or is a byte-identical copy of it); else None."""
    if not file:
        return None
    try:
        return json.loads((Path(picks_dir) / PICKS_FILE).read_text()).get(_digest(file))
    except (OSError, ValueError):
        return None


def write_truth(video: Path, frame: int, num_frames: int, size: tuple[int, int], fps: float, out: Path) -> Path | None:
    """The real clip from `frame` on, `num_frames` long (fewer when the clip ends first), resized to `size`
    (width, height) as the generation was, written to `out`; None when the clip cannot be read."""
    try:
        frames = read_frames(video, start=max(int(frame), 0))[:num_frames]
    except VideoError:
        return None
    if not len(frames):
        return None
    if frames.shape[2] != size[0] or frames.shape[1] != size[1]:
        frames = np.stack([np.asarray(Image.fromarray(f).resize(size, Image.BILINEAR)) for f in frames])
    write_video(out, frames, fps)
    return out


def real_clip(datasets, picks_dir: Path, condition: str, record: dict, out_dir: Path) -> dict | None:
    """{"file", "label"} of the real clip written beside a generation (compare.json `record`, in `out_dir`) whose
    first frame or clip was picked from a dataset clip; None otherwise. `datasets`: the DatasetController."""
    source = recall(picks_dir, condition)
    if source is None:
        return None
    try:
        video, _ = datasets.clip(source["dataset"], source["clip"])
    except REFUSALS:  # the dataset or clip is gone since it was picked
        return None
    size, frames = (int(record["width"]), int(record["height"])), int(record["num_frames"])
    written = write_truth(video, source["frame"], frames, size, float(record["fps"]), Path(out_dir) / TRUTH_FILE)
    if written is None:
        return None
    return {"file": written.name, "label": f"real clip: {source['clip']} from frame {source['frame']}"}
