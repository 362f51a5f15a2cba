"""How the page shows a video: a filmstrip of evenly spaced frames, which a glance reads without pressing play,
and for a small video an enlarged copy that plays with sharp pixels.

Torch-free (trainer.video decodes and encodes through imageio-ffmpeg's binary, Pillow draws): the studio makes
them itself, once per version of the video.
"""

from __future__ import annotations

import hashlib
import math
import os
import uuid
from pathlib import Path

import numpy as np
from PIL import Image

from trainer.video import VideoError, read_frames, stream_info, write_video

# A video whose smaller side is under this is played enlarged a whole number of times, each pixel a square block:
# browsers smooth a small video they stretch to the page (Chromium did, `image-rendering: pixelated` or not), and
# a 64x64 arm turns to haze.
DISPLAY_MIN_SIDE = 256
ENLARGED_DIR = "enlarged"  # under the workspace's servable temp folder, pruned with it
ENLARGE_BUDGET_BYTES = 256 * 2**20  # enlarged frames held at once: a longer small clip plays as it is (smoothed)
FILMSTRIP_FRAMES = 5  # the first frame, the last, and three between: enough to see an arm start to move
GAP_PX = 2  # a light seam between frames, so the strip does not read as one wide picture
GAP_RGB = (245, 245, 245)


def filmstrip_frames(count: int, wanted: int = FILMSTRIP_FRAMES) -> list[int]:
    """Indices of `wanted` evenly spaced frames of `count`, the first and the last included."""
    if count <= wanted:
        return list(range(count))
    return sorted({round(i * (count - 1) / (wanted - 1)) for i in range(wanted)})


def filmstrip_image(frames: np.ndarray, wanted: int = FILMSTRIP_FRAMES) -> Image.Image:
    """uint8 [F, H, W, 3] -> one RGB image of the chosen frames side by side."""
    picked = [frames[i] for i in filmstrip_frames(len(frames), wanted)]
    height, width = picked[0].shape[:2]
    strip = Image.new("RGB", (len(picked) * width + (len(picked) - 1) * GAP_PX, height), GAP_RGB)
    for k, frame in enumerate(picked):
        strip.paste(Image.fromarray(frame), (k * (width + GAP_PX), 0))
    return strip


def filmstrip(video: Path) -> Path | None:
    """`video`'s filmstrip as a PNG beside it (same stem), made again when the video is newer; None when the
    video cannot be read (deleted, or still being written)."""
    target = video.with_suffix(".png")
    try:
        made = video.stat().st_mtime
        if target.is_file() and target.stat().st_mtime >= made:
            return target
        frames = read_frames(video)
    except (OSError, VideoError):
        return None
    if not len(frames):
        return None
    tmp = target.with_name(f".{target.name}.tmp")
    filmstrip_image(frames).save(tmp, format="PNG")
    tmp.replace(target)
    return target


def display_scale(width: int, height: int, min_side: int = DISPLAY_MIN_SIDE) -> int:
    """The whole factor that brings the smaller side to at least `min_side` (1: shown as it is)."""
    return max(1, math.ceil(min_side / max(1, min(width, height))))


def enlarged(video: Path, folder: Path) -> Path:
    """The file the page plays for `video`: a small one (under DISPLAY_MIN_SIDE) enlarged by repeating pixels, a
    copy in `folder` made again when the video is newer; `video` itself when it is large enough, too long for
    ENLARGE_BUDGET_BYTES, has no frame rate, or cannot be read (the player then says so)."""
    try:
        width, height, fps = stream_info(video)
        made = video.stat().st_mtime
    except (OSError, VideoError):
        return video
    scale = display_scale(width, height)
    if scale == 1 or not fps > 0:
        return video
    # A folder per source (clips of different folders share names); the file keeps the clip's name for a download.
    target = folder / hashlib.sha1(str(video.resolve()).encode()).hexdigest()[:16] / f"{video.stem}.x{scale}.mp4"
    try:
        if target.is_file() and target.stat().st_mtime >= made:
            return target
        most = ENLARGE_BUDGET_BYTES // (width * height * 3 * scale * scale)
        frames = read_frames(video, 0, most + 1, exact=False)
        if len(frames) > most:
            return video
        target.parent.mkdir(parents=True, exist_ok=True)
        # The page asks for a clip from two events at once: each writes its own file, the last one in wins.
        mine = target.with_name(f".{target.stem}.{uuid.uuid4().hex}.mp4")
        write_video(mine, frames.repeat(scale, axis=1).repeat(scale, axis=2), fps)
        os.replace(mine, target)
    except (OSError, VideoError, ValueError):
        return video
    return target
