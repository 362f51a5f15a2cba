"""Pictures of a video that a glance reads without pressing play: a filmstrip of evenly spaced frames.

Torch-free (trainer.video decodes through imageio-ffmpeg's binary, Pillow draws): the studio makes them itself,
next to the servable copy of a video, once per version of the video.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from trainer.video import VideoError, read_frames

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
