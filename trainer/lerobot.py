"""LeRobot datasets (codebase v2.x and v3.0) as training clips: one camera, `num_frames`-frame windows of each
episode, the task text as the caption, and whole episodes held out for evaluation.

meta/info.json says which layout a folder is in (`codebase_version`) and where its files are (the `data_path`
and `video_path` templates); cameras are the features of dtype "video" (`observation.images.<camera>`).

    v2.x   meta/tasks.jsonl, meta/episodes.jsonl; one parquet and one mp4 per camera per episode, e.g.
           videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4
    v3.0   meta/tasks.parquet, meta/episodes/chunk-*/file-*.parquet; episodes share files: an episode starts at
           its `videos/<camera>/from_timestamp` in videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4

Every frame row of data/**/*.parquet carries episode_index, frame_index and task_index: a clip's caption is
the task of most of its frames, so an episode that changes task gives each clip the task it shows.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pandas as pd

from trainer import __version__
from trainer.lerobot_files import (
    LeRobotError,
    episodes_table,
    parquet_columns,
    read_json,
    read_jsonl,
    read_parquet,
)
from trainer.spec.video_shape import RECIPE_SIZE
from trainer.video import VideoError, write_video

INFO_FILE = "meta/info.json"
PROVENANCE_FILE = "provenance.json"
HELD_OUT_DIR = "held_out"  # DIR/held_out/ beside DIR's own clips, as the sample's "sample:held_out" split
SUPPORTED = ("v2.0", "v2.1", "v3.0")
CONVERT_HINT = "convert it with LeRobot's conversion script to v2.1 or v3.0"


@dataclass(frozen=True)
class Source:
    root: Path
    version: str
    fps: float
    cameras: tuple[str, ...]  # in meta/info.json order
    info: dict


@dataclass(frozen=True)
class Episode:
    index: int
    length: int  # frames, as the episode metadata states
    video: Path  # the chosen camera's mp4
    start_s: float  # where the episode begins in `video`: 0 in v2.x, its from_timestamp in v3.0
    tasks: tuple[str, ...]  # the episode's tasks as its metadata lists them


@dataclass
class Summary:
    source: Source
    camera: str
    num_frames: int
    stride: int
    clips: dict[str, int] = field(default_factory=lambda: {"train": 0, HELD_OUT_DIR: 0})
    episodes: dict[str, list[int]] = field(default_factory=lambda: {"train": [], HELD_OUT_DIR: []})
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (episode, why), import still useful
    failed: list[tuple[int, str]] = field(default_factory=list)  # (episode, why), the dataset needs fixing


def is_lerobot(path: str | Path) -> bool:
    return (Path(path) / INFO_FILE).is_file()


def open_source(root: str | Path) -> Source:
    root = Path(root)
    info = read_json(root / INFO_FILE)
    version = str(info.get("codebase_version", ""))
    if not version.startswith(("v2.", "v3.")):
        raise LeRobotError(
            f"{root / INFO_FILE} says codebase_version {version or '(none)'}, which import-data "
            f"does not read ({', '.join(SUPPORTED)}); {CONVERT_HINT}."
        )
    features = info.get("features") if isinstance(info.get("features"), dict) else {}
    cameras = tuple(k for k, v in features.items() if isinstance(v, dict) and v.get("dtype") == "video")
    if not cameras or not info.get("video_path"):
        images = [k for k, v in features.items() if isinstance(v, dict) and v.get("dtype") == "image"]
        how = f"its cameras ({', '.join(images)}) are images stored in parquet" if images else "it has no camera"
        raise LeRobotError(f"{root} holds no video to import: {how}; import-data reads LeRobot video features.")
    try:
        fps = float(info["fps"])
    except (KeyError, TypeError, ValueError):
        fps = 0.0
    if not fps > 0:
        raise LeRobotError(f"{root / INFO_FILE} has no valid fps ({info.get('fps')!r}); fix the file.")
    return Source(root, version, fps, cameras, info)


def pick_camera(source: Source, wanted: str | None) -> str:
    """The camera named in full or by its last part (`top` for observation.images.top); the first by default."""
    if not wanted:
        return source.cameras[0]
    matches = [c for c in source.cameras if wanted in (c, c.rsplit(".", 1)[-1])]
    if len(matches) != 1:
        raise LeRobotError(
            f"--camera {wanted!r} is not a camera of {source.root}; choose one of: {', '.join(source.cameras)}."
        )
    return matches[0]


def read_tasks(source: Source) -> dict[int, str]:
    if source.version.startswith("v2."):
        rows = read_jsonl(source.root / "meta" / "tasks.jsonl")
        return {int(r["task_index"]): str(r["task"]) for r in rows if "task_index" in r and "task" in r}
    path = source.root / "meta" / "tasks.parquet"
    table = read_parquet(path)
    # LeRobot writes the task text as the table's index; accept it as a column too.
    texts = table["task"] if "task" in table.columns else table.index
    if "task_index" not in table.columns:
        raise LeRobotError(f"{path} has no task_index column; the dataset is incomplete: {CONVERT_HINT}.")
    return {int(i): str(t) for i, t in zip(table["task_index"], texts)}


def read_episodes(source: Source, camera: str) -> list[Episode]:
    """Every episode of the metadata, in episode order, with where its frames are in the camera's mp4."""
    v2 = source.version.startswith("v2.")
    where = source.root / "meta" / ("episodes.jsonl" if v2 else "episodes")
    rows = read_jsonl(where) if v2 else episodes_table(source.root, camera).to_dict("records")
    try:
        episodes = [_episode(source, camera, row) for row in rows]
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise LeRobotError(
            f"{where} or meta/info.json's video_path does not describe the episodes ({exc!r}); "
            f"the dataset is incomplete: re-download it or {CONVERT_HINT}."
        ) from None
    return sorted(episodes, key=lambda e: e.index)


def _episode(source: Source, camera: str, row: dict) -> Episode:
    index, template = int(row["episode_index"]), source.info["video_path"]
    listed = row.get("tasks")  # a list in v2.x JSON, an array from v3.0 parquet
    tasks = () if listed is None else tuple(str(t) for t in listed)
    if source.version.startswith("v2."):
        chunk = index // int(source.info.get("chunks_size") or 1000)
        video = template.format(episode_chunk=chunk, episode_index=index, video_key=camera)
        return Episode(index, int(row["length"]), source.root / video, 0.0, tasks)
    video = template.format(
        video_key=camera,
        chunk_index=int(row[f"videos/{camera}/chunk_index"]),
        file_index=int(row[f"videos/{camera}/file_index"]),
    )
    start_s = float(row[f"videos/{camera}/from_timestamp"])
    return Episode(index, int(row["length"]), source.root / video, start_s, tasks)


def frame_tasks(source: Source) -> dict[int, np.ndarray]:
    """Each episode's task_index per frame, in frame order; empty when the parquet frames have no task_index."""
    columns = ["episode_index", "frame_index", "task_index"]
    parts = []
    for path in sorted((source.root / "data").glob("**/*.parquet")):
        if set(columns) <= set(parquet_columns(path)):
            parts.append(read_parquet(path, columns))
    if not parts:
        return {}
    frames = pd.concat(parts, ignore_index=True).sort_values(["episode_index", "frame_index"], kind="stable")
    return {int(e): group["task_index"].to_numpy() for e, group in frames.groupby("episode_index", sort=False)}


def clip_starts(length: int, num_frames: int, stride: int) -> list[int]:
    """First frames of the whole windows of an episode; frames after the last whole window are left out."""
    return list(range(0, length - num_frames + 1, stride)) if length >= num_frames else []


def held_out_episodes(indices: list[int], amount: float) -> list[int]:
    """`amount` episodes (a fraction of them when below 1), spread evenly over the recording so the held-out
    set is not all from one session."""
    if amount <= 0:
        return []
    count = max(1, round(amount * len(indices))) if amount < 1 else int(amount)
    if count >= len(indices):
        raise LeRobotError(
            f"--held-out-episodes {amount:g} leaves no episode to train on ({len(indices)} "
            "episodes have --num-frames frames); hold out fewer."
        )
    return [indices[int((i + 0.5) * len(indices) / count)] for i in range(count)]


def import_dataset(
    root: str | Path,
    dest: Path,
    camera: str | None = None,
    num_frames: int = RECIPE_SIZE.num_frames,
    stride: int | None = None,
    held_out: float = 0,
    prompt_prefix: str = "",
) -> Summary:
    """Write the clips into dest (videos/ + metas/, held-out episodes in dest/held_out/) with provenance.json.

    Written into a hidden sibling folder and renamed at the end: an interrupted import leaves no half dataset.
    """
    if num_frames < 1 or (stride is not None and stride < 1):
        raise LeRobotError(f"--num-frames and --stride must be at least 1 (got {num_frames} and {stride}).")
    source = open_source(root)
    summary = Summary(source, pick_camera(source, camera), num_frames, stride or num_frames)
    episodes, tasks, per_frame = read_episodes(source, summary.camera), read_tasks(source), frame_tasks(source)
    long_enough = [e.index for e in episodes if e.length >= num_frames]
    if not long_enough:
        longest = max((e.length for e in episodes), default=0)
        raise LeRobotError(
            f"no episode of {source.root} has {num_frames} frames (the longest has {longest}); lower --num-frames.",
            exit_code=1,
        )
    held = set(held_out_episodes(long_enough, held_out))
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.lerobot-"))
    try:
        for episode in episodes:
            split = HELD_OUT_DIR if episode.index in held else "train"
            _import_episode(
                episode,
                staging / HELD_OUT_DIR if split == HELD_OUT_DIR else staging,
                split,
                tasks,
                per_frame.get(episode.index),
                prompt_prefix,
                summary,
            )
        if not summary.clips["train"]:
            why = "; ".join(f"episode {e}: {why.rstrip('.')}" for e, why in (summary.failed + summary.skipped)[:2])
            raise LeRobotError(f"no training clip of {source.root} could be imported: {why}.", 1)
        _write_provenance(staging, "train", summary)
        if summary.clips[HELD_OUT_DIR]:
            _write_provenance(staging / HELD_OUT_DIR, HELD_OUT_DIR, summary)
        if dest.is_dir():
            dest.rmdir()  # only ever an empty folder: the caller refuses any other
        os.replace(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return summary


def read_provenance(dataset: str | Path) -> dict | None:
    """The provenance.json import-data wrote into a dataset folder, or None when it has none."""
    path = Path(dataset) / PROVENANCE_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# --- one episode -----------------------------------------------------------------------------------
def _import_episode(
    episode: Episode,
    out: Path,
    split: str,
    tasks: dict[int, str],
    frame_task: np.ndarray | None,
    prompt_prefix: str,
    summary: Summary,
) -> None:
    n, step = summary.num_frames, summary.stride
    starts = clip_starts(episode.length, n, step)
    if not starts:
        summary.skipped.append((episode.index, f"{episode.length} frames, fewer than --num-frames {n}"))
        return
    captions = [_caption(episode, frame_task, tasks, s, n) for s in starts]
    if None in captions:
        summary.failed.append((episode.index, "no task text for its task_index in the tasks table"))
        return
    (out / "videos").mkdir(parents=True, exist_ok=True)
    (out / "metas").mkdir(parents=True, exist_ok=True)
    written = 0
    try:
        for start, clip in _windows(_frames(episode, summary.source.fps), starts, n):
            key = f"episode_{episode.index:06d}_{start:06d}"
            write_video(out / "videos" / f"{key}.mp4", clip, summary.source.fps)
            (out / "metas" / f"{key}.txt").write_text(
                f"{prompt_prefix}{captions[starts.index(start)]}\n", encoding="utf-8"
            )
            written += 1
    except VideoError as exc:
        summary.failed.append((episode.index, str(exc)))
    else:
        if written < len(starts):
            summary.failed.append(
                (
                    episode.index,
                    f"{episode.video} ends before the episode's {episode.length} "
                    f"frames; {len(starts) - written} of its clips were not imported",
                )
            )
    summary.clips[split] += written
    if written:
        summary.episodes[split].append(episode.index)


def _caption(episode: Episode, frame_task: np.ndarray | None, tasks: dict[int, str], start: int, n: int) -> str | None:
    window = frame_task[start : start + n] if frame_task is not None else np.empty(0)
    if len(window):
        # Counter keeps first-seen order for equal counts, so a tie goes to the task the clip starts with.
        return tasks.get(int(Counter(window.tolist()).most_common(1)[0][0]))
    return episode.tasks[0] if episode.tasks else None


def _windows(frames: Iterator[np.ndarray], starts: list[int], n: int) -> Iterator[tuple[int, np.ndarray]]:
    """(start, frames[start:start + n]) for each start, holding no more than one window of frames in memory."""
    pending, buffer, first = list(starts), [], 0
    for index, frame in enumerate(frames):
        buffer.append(frame)
        if index + 1 == pending[0] + n:
            start = pending.pop(0)
            yield start, np.stack(buffer[start - first :])
            if not pending:
                return
        drop = min(pending[0] - first, len(buffer))
        if drop > 0:
            del buffer[:drop]
            first += drop


def _frames(episode: Episode, fps: float) -> Iterator[np.ndarray]:
    """The episode's frames from its mp4, decoded once, in order (uint8 [H, W, 3])."""
    if not episode.video.is_file():
        raise VideoError(
            episode.video,
            "file not found (named by meta/info.json's video_path)",
            fix="download the dataset's videos too",
        )
    # Seek half a frame early: frames before the seek point are dropped, and a v3.0 episode's first frame
    # may sit a rounding error before its from_timestamp.
    seek = max(episode.start_s - 0.5 / fps, 0.0)
    reader = imageio_ffmpeg.read_frames(
        str(episode.video),
        input_params=["-ss", f"{seek:.6f}"] if seek > 0 else [],
        output_params=["-frames:v", str(episode.length), "-fps_mode", "passthrough"],
    )
    try:
        width, height = next(reader)["size"]
        for chunk in reader:
            yield np.frombuffer(chunk, dtype=np.uint8).reshape(height, width, 3)
    except (OSError, RuntimeError, StopIteration, ValueError) as exc:
        reason = f"does not decode ({str(exc).splitlines()[0] if str(exc) else 'no frames'})"
        raise VideoError(episode.video, reason, fix="re-download the dataset's videos") from None
    finally:
        reader.close()


# --- files ---------------------------------------------------------------------------------------
def _write_provenance(folder: Path, split: str, summary: Summary) -> None:
    source = summary.source
    record = {
        "format": "lerobot",
        "source": str(source.root.resolve()),
        "dataset_id": _hub_id(source.root),
        "codebase_version": source.version,
        "robot_type": source.info.get("robot_type"),
        "fps": source.fps,
        "camera": summary.camera,
        "num_frames": summary.num_frames,
        "stride": summary.stride,
        "split": split,
        "clips": summary.clips[split],
        "episodes": summary.episodes[split],
        "other_split_episodes": summary.episodes[HELD_OUT_DIR if split == "train" else "train"],
        "not_imported": [{"episode": e, "reason": why} for e, why in sorted(summary.skipped + summary.failed)],
        "imported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "project_version": __version__,
    }
    (folder / PROVENANCE_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def _hub_id(root: Path) -> str | None:
    """owner/name when the folder is a Hub snapshot (…/datasets--owner--name/snapshots/<commit>/)."""
    for part in root.resolve().parts:
        if part.startswith("datasets--"):
            return part.removeprefix("datasets--").replace("--", "/", 1)
    return None
