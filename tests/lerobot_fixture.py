"""Small LeRobot datasets in the v2.1 and v3.0 layouts, built for tests (a few KB, about a second to write).

Each frame is one flat colour that says where it came from, so a test can tell which episode, frame and camera
a clip holds after a lossy round trip: red = 30 + 25 * episode, green = 10 + 9 * frame, blue = 60 + 100 * camera.
v3.0 videos are AV1 (what LeRobot records with), two files per camera with several episodes in each;
v2.1 videos are H.264, one per episode and camera. Episodes are at most 27 frames long (green stays below 256).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pandas as pd

from trainer.video import write_video

CAMERAS = ("observation.images.top", "observation.images.wrist")
TASKS = ("Pick up the red cube.", "Put the cube in the bin.")
V2_DATA = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
V2_VIDEO = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
V3_DATA = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
V3_VIDEO = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
V3_EPISODES = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"


def colour(episode: int, frame: int, camera: int) -> tuple[int, int, int]:
    return 30 + 25 * episode, 10 + 9 * frame, 60 + 100 * camera


def episode_frames(episode: int, length: int, camera: int, height: int = 32, width: int = 48) -> np.ndarray:
    frames = np.empty((length, height, width, 3), np.uint8)
    for f in range(length):
        frames[f] = colour(episode, f, camera)
    return frames


def write_lerobot(
    root: Path,
    version: str = "v3.0",
    lengths: tuple[int, ...] = (20, 12, 24, 7, 20, 16),
    fps: int = 10,
    frame_task: Callable[[int, int], int] | None = None,
) -> Path:
    """A LeRobot dataset of len(lengths) episodes; `frame_task(episode, frame)` is each frame's task_index
    (default: episode % 2)."""
    frame_task = frame_task or (lambda e, f: e % len(TASKS))
    frames = _frame_table(lengths, fps, frame_task)
    episodes = [
        {
            "episode_index": e,
            "length": n,
            "tasks": list(dict.fromkeys(TASKS[t] for t in frames[frames.episode_index == e].task_index)),
        }
        for e, n in enumerate(lengths)
    ]
    info = {
        "codebase_version": version,
        "robot_type": "so100",
        "fps": fps,
        "total_episodes": len(lengths),
        "total_frames": sum(lengths),
        "total_tasks": len(TASKS),
        "chunks_size": 1000,
        "splits": {"train": f"0:{len(lengths)}"},
        "data_path": V2_DATA if version.startswith("v2") else V3_DATA,
        "video_path": V2_VIDEO if version.startswith("v2") else V3_VIDEO,
        "features": {
            "action": {"dtype": "float32", "shape": [2], "names": ["x", "y"]},
            **{
                cam: {
                    "dtype": "video",
                    "shape": [32, 48, 3],
                    "names": ["height", "width", "channels"],
                    "info": {"video.fps": fps, "video.codec": "h264" if version.startswith("v2") else "av1"},
                }
                for cam in CAMERAS
            },
            **{
                k: {"dtype": "int64", "shape": [1], "names": None}
                for k in ("frame_index", "episode_index", "index", "task_index")
            },
            "timestamp": {"dtype": "float32", "shape": [1], "names": None},
        },
    }
    (root / "meta").mkdir(parents=True, exist_ok=True)
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=2))
    (_write_v2 if version.startswith("v2") else _write_v3)(root, lengths, fps, frames, episodes)
    return root


def _frame_table(lengths, fps, frame_task) -> pd.DataFrame:
    rows = []
    for e, n in enumerate(lengths):
        for f in range(n):
            rows.append(
                {
                    "action": [0.1 * f, -0.1 * f],
                    "timestamp": f / fps,
                    "frame_index": f,
                    "episode_index": e,
                    "index": len(rows),
                    "task_index": frame_task(e, f),
                }
            )
    return pd.DataFrame(rows)


def _write_v2(root, lengths, fps, frames, episodes) -> None:
    lines = lambda rows: "".join(json.dumps(r) + "\n" for r in rows)  # noqa: E731
    (root / "meta" / "tasks.jsonl").write_text(lines({"task_index": i, "task": t} for i, t in enumerate(TASKS)))
    (root / "meta" / "episodes.jsonl").write_text(lines(episodes))
    for e, n in enumerate(lengths):
        data = root / V2_DATA.format(episode_chunk=0, episode_index=e)
        data.parent.mkdir(parents=True, exist_ok=True)
        frames[frames.episode_index == e].to_parquet(data, index=False)
        for c, cam in enumerate(CAMERAS):
            video = root / V2_VIDEO.format(episode_chunk=0, video_key=cam, episode_index=e)
            video.parent.mkdir(parents=True, exist_ok=True)
            write_video(video, episode_frames(e, n, c), fps)


def _write_v3(root, lengths, fps, frames, episodes) -> None:
    """Episodes 0-2 share file-000 of each camera, the rest file-001; one data file; one episodes file."""
    pd.DataFrame({"task_index": range(len(TASKS))}, index=list(TASKS)).to_parquet(root / "meta" / "tasks.parquet")
    data = root / V3_DATA.format(chunk_index=0, file_index=0)
    data.parent.mkdir(parents=True, exist_ok=True)
    frames.to_parquet(data, index=False)
    files = [members for members in (range(min(3, len(lengths))), range(3, len(lengths))) if members]
    rows = [dict(ep) for ep in episodes]
    for c, cam in enumerate(CAMERAS):
        for file_index, members in enumerate(files):
            start = 0.0
            for e in members:
                rows[e].update(
                    {
                        f"videos/{cam}/chunk_index": 0,
                        f"videos/{cam}/file_index": file_index,
                        f"videos/{cam}/from_timestamp": start,
                        f"videos/{cam}/to_timestamp": start + lengths[e] / fps,
                    }
                )
                start += lengths[e] / fps
            video = root / V3_VIDEO.format(video_key=cam, chunk_index=0, file_index=file_index)
            _write_av1(video, np.concatenate([episode_frames(e, lengths[e], c) for e in members]), fps)
    offsets = np.cumsum([0, *lengths])
    for e, row in enumerate(rows):
        row.update(
            {
                "data/chunk_index": 0,
                "data/file_index": 0,
                "dataset_from_index": int(offsets[e]),
                "dataset_to_index": int(offsets[e + 1]),
                "meta/episodes/chunk_index": 0,
                "meta/episodes/file_index": 0,
                "stats/action/mean": [0.0, 0.0],
            }
        )
    path = root / V3_EPISODES.format(chunk_index=0, file_index=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(path, index=False)


def _write_av1(path: Path, frames: np.ndarray, fps: int) -> None:
    """AV1 in yuv420p with a keyframe every 2 frames, LeRobot's recording settings."""
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames.shape[1:3]
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        "-y",
        "-loglevel",
        "error",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{width}x{height}",
        "-r",
        str(fps),
        "-i",
        "-",
        "-c:v",
        "libsvtav1",
        "-pix_fmt",
        "yuv420p",
        "-g",
        "2",
        "-crf",
        "30",
        str(path),
    ]
    subprocess.run(command, input=frames.tobytes(), check=True, capture_output=True)
