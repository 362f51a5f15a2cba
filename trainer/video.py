"""mp4 clips in and out, through the ffmpeg binary that imageio-ffmpeg ships (no torchvision, no cv2).

Frames are numpy uint8 arrays shaped [frames, height, width, 3] in RGB. Files are H.264 in yuv420p, the
format every browser and player shows, written at exactly the size given: imageio-ffmpeg's default
`macro_block_size=16` would silently rescale 72x96 to 80x96, so the size is never rounded here; yuv420p
stores colour at half resolution, which is why width and height must be even.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import imageio_ffmpeg
import numpy as np

# Constant-quality H.264: 18 is visually lossless for x264, and the clips we write (samples, synthetic
# data) are small enough that quality matters more than bytes.
H264_CRF = "18"
REENCODE_HINT = "re-encode it (ffmpeg -i IN -c:v libx264 -pix_fmt yuv420p OUT.mp4) or remove it"


class VideoError(Exception):
    """A video file that cannot be read or written; `reason` is the short cause, without the path."""

    def __init__(self, path: str | Path, reason: str, fix: str = REENCODE_HINT):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}; {fix}." if fix else f"{path}: {reason}.")


@dataclass(frozen=True)
class VideoInfo:
    frames: int
    fps: float  # 0.0 when the file does not state a frame rate
    width: int
    height: int


def probe_video(path: str | Path) -> VideoInfo:
    """Size, frame rate and the exact frame count of a clip; raises VideoError when it does not decode cleanly.

    The count comes from decoding every frame: mp4 headers carry only a duration (imageio-ffmpeg reports no
    frame count at all), and a file damaged mid-stream still has a valid header but loses frames. Any error
    the decoder reports makes the clip unusable, since training on concealed frames teaches the artefacts.
    """
    path = _existing_file(path)
    image = _image_format(path)
    if image:  # ffmpeg decodes a still image as a 1-frame "video": say what the file really is
        raise VideoError(
            path,
            f"is a {image} image, not a video",
            fix="convert the clip to mp4, or use the image as a first frame in Generate",
        )
    frames, errors = _decode(path)  # first: its ffmpeg messages are the clearest account of a bad file
    if errors:
        raise VideoError(path, f"does not decode cleanly ({errors})")
    header = _header(path)
    width, height = header["size"]
    return VideoInfo(frames=frames, fps=float(header["fps"]), width=width, height=height)


def stream_info(path: str | Path) -> tuple[int, int, float]:
    """(width, height, fps) from the stream header alone, without decoding a frame (fps 0.0 when unstated);
    raises VideoError when there is no readable header."""
    header = _header(_existing_file(path))
    width, height = header["size"]
    return width, height, float(header["fps"])


def read_frames(path: str | Path, start: int = 0, count: int | None = None, *, exact: bool = True) -> np.ndarray:
    """Frames [start, start + count) as uint8 [F, H, W, 3]; every frame from `start` on when count is None.

    Frame-exact (decoded and counted, never a time seek). Raises VideoError when the clip ends before
    start + count, so a caller never trains on a silently shorter clip; `exact=False` returns what there is
    (at most `count`: a bound on memory, not a demand). Integrity is probe_video's job: this returns what the
    decoder delivers.
    """
    if start < 0 or (count is not None and count < 1):
        raise ValueError(f"start must be 0 or more and count at least 1 (got start={start}, count={count})")
    path = _existing_file(path)
    trim = f"trim=start_frame={start}" + (f":end_frame={start + count}" if count is not None else "")
    # passthrough: hand over decoded frames one for one; the default may duplicate or drop frames to make
    # a variable-frame-rate clip constant.
    reader = imageio_ffmpeg.read_frames(str(path), output_params=["-vf", trim, "-fps_mode", "passthrough"])
    try:
        width, height = next(reader)["size"]
        chunks = list(reader)
    except (OSError, RuntimeError, StopIteration, IndexError, ValueError):
        # imageio-ffmpeg's message is ffmpeg's whole banner; a clean decode pass names the actual fault
        raise VideoError(path, f"does not decode cleanly ({_decode(path)[1] or 'ffmpeg gave no reason'})") from None
    finally:
        reader.close()
    frames = np.frombuffer(b"".join(chunks), dtype=np.uint8).reshape(len(chunks), height, width, 3)
    if exact and count is not None and len(frames) < count:
        reason = f"ends before frame {start + count} (frames {start} to {start + count - 1} were asked for)"
        raise VideoError(path, reason, fix="ask for fewer frames or use a longer clip")
    return frames


def write_video(path: str | Path, frames: np.ndarray, fps: float) -> None:
    """Write uint8 [F, H, W, 3] RGB frames as an H.264 yuv420p mp4 of exactly H x W, replacing `path` atomically.

    ffmpeg is driven directly rather than through imageio_ffmpeg.write_frames, which leaves ffmpeg's errors
    on the terminal and ignores its exit status (an odd-sized clip "succeeds" and writes no file).
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"frames must be uint8 [F, H, W, 3] with F >= 1 (got {frames.dtype} {frames.shape})")
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:
        raise ValueError(f"width and height must be even for yuv420p H.264 (got {width}x{height}); crop or pad")
    if not (fps > 0 and np.isfinite(fps)):
        raise ValueError(f"fps must be a positive number (got {fps!r})")
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
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
        str(Fraction(fps).limit_denominator(1001)),
        "-i",
        "-",
        "-an",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-crf",
        H264_CRF,
        "-movflags",
        "+faststart",  # index first, so the studio's browser player starts before the end loads
        "-f",
        "mp4",
        str(partial),
    ]
    done = subprocess.run(command, input=np.ascontiguousarray(frames).tobytes(), capture_output=True)
    if done.returncode != 0 or not partial.is_file() or partial.stat().st_size == 0:
        partial.unlink(missing_ok=True)
        reason = _first_line(done.stderr.decode(errors="replace")) or f"ffmpeg exited with {done.returncode}"
        raise VideoError(path, f"could not be written ({reason})", fix="check the folder is writable")
    os.replace(partial, path)


# ---------------------------------------------------------------------------------------------------
def _existing_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise VideoError(path, "file not found", fix="check the path")
    return path


IMAGE_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"BM": "BMP",
}


def _image_format(path: Path) -> str | None:
    """The still-image format a file's first bytes announce (a photo renamed .mp4), or None."""
    with path.open("rb") as fh:
        head = fh.read(12)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return next((name for magic, name in IMAGE_SIGNATURES.items() if head.startswith(magic)), None)


def _header(path: Path) -> dict:
    """imageio-ffmpeg's parse of ffmpeg's stream header: `size` as delivered (after rotation) and `fps`."""
    reader = imageio_ffmpeg.read_frames(str(path))
    try:
        return next(reader)
    # Reached only for files that decode, so any failure is imageio-ffmpeg's parser not knowing the header.
    except Exception as exc:  # noqa: BLE001
        reason = f"has a stream header imageio-ffmpeg cannot parse ({type(exc).__name__})"
        raise VideoError(path, reason) from None
    finally:
        reader.close()


def _decode(path: Path) -> tuple[int, str]:
    """Decode every frame of the first video stream: (frames decoded, ffmpeg's first error or "")."""
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-nostats",
        "-progress",
        "pipe:1",  # machine-readable "frame=N" lines on stdout
        "-i",
        str(path),
        "-map",
        "0:v:0",
        "-fps_mode",
        "passthrough",
        "-f",
        "null",
        "-",
    ]
    done = subprocess.run(command, capture_output=True, text=True, errors="replace")
    errors = _first_line(done.stderr) or (f"ffmpeg exited with {done.returncode}" if done.returncode else "")
    if "matches no streams" in done.stderr:  # ffmpeg's wording for '-map 0:v:0' finding nothing
        errors = "it has no video stream"
    counts = [line.split("=", 1)[1] for line in done.stdout.splitlines() if line.startswith("frame=")]
    return (int(counts[-1]) if counts else 0), errors


def _first_line(text: str) -> str:
    """ffmpeg's first message, without its '[h264 @ 0x55d...]' source tag."""
    for line in text.splitlines():
        line = line.strip()
        while line.startswith("[") and "]" in line:
            line = line.split("]", 1)[1].strip()
        if line:
            return line
    return ""
