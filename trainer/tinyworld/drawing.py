"""What both sample worlds share: the clip-shape rule (trainer.spec.video_shape's, in the sample's field names)
and a supersampled canvas with a few outlines.

Geometry is in frame units (0..1, x to the right, y down) and scaled to pixels only when drawn.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from trainer.spec.video_shape import video_shape_problems

RGB = tuple[int, int, int]
FPS = 8
SUPERSAMPLE = 4  # shapes are drawn at 4x and box-filtered down: smooth edges at 64 px without blurring
LONGEST_REACH = 1.25  # the longest outline (the ellipse) reaches this many radii from its centre


def clip_shape_problems(size: int, num_frames: int, names: tuple[str, str] = ("size", "num_frames")) -> list[str]:
    """Every reason `size` and `num_frames` cannot make a clip, one sentence each naming the field (empty: fine).

    The rule is video_shape_problems with 2 conditioning latent frames: the sample data is
    trained with the recipe's 1 or 2."""
    field_names = {"height": names[0], "width": names[0], "num_frames": names[1]}
    problems = video_shape_problems(size, size, num_frames, conditional_latent_frames=2)
    return list(dict.fromkeys(f"{field_names[name]} {message}." for name, message in problems))  # height == width


def check_clip_shape(size: int, num_frames: int) -> None:
    problems = clip_shape_problems(size, num_frames)
    if problems:
        raise ValueError(" ".join(problems))


def uniform_point(rng: np.random.Generator, xs: tuple[float, float], ys: tuple[float, float]) -> tuple[float, float]:
    return (round(float(rng.uniform(*xs)), 4), round(float(rng.uniform(*ys)), 4))


class Canvas:
    """A supersampled PIL canvas that takes frame-unit coordinates."""

    def __init__(self, size: int, background: RGB | Image.Image):
        self.scale = size * SUPERSAMPLE
        self.size = size
        if isinstance(background, Image.Image):
            self.image = background.copy()
        else:
            self.image = Image.new("RGB", (self.scale, self.scale), background)
        self.draw = ImageDraw.Draw(self.image)

    def px(self, points) -> list[tuple[float, float]]:
        return [(float(x) * self.scale, float(y) * self.scale) for x, y in np.reshape(points, (-1, 2))]

    def disc(self, center, radius: float, fill: RGB) -> None:
        (x, y), r = self.px(center)[0], radius * self.scale
        self.draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)

    def polygon(self, points, fill: RGB) -> None:
        self.draw.polygon(self.px(points), fill=fill)

    def segment(self, start, end, width: float, fill: RGB) -> None:
        """A thick segment with round caps (so joints look continuous)."""
        self.draw.line(self.px([start, end]), fill=fill, width=max(1, round(width * self.scale)))
        for point in (start, end):
            self.disc(point, width / 2, fill)

    def frame(self) -> np.ndarray:
        return np.asarray(self.image.resize((self.size, self.size), Image.Resampling.BOX), dtype=np.uint8)


def rotated(points: np.ndarray, angle: float, center) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return points @ np.array([[c, s], [-s, c]]) + np.asarray(center)


def outline(shape: str, radius: float) -> np.ndarray:
    """The shape's outline around the origin, long axis along x, scaled by `radius` (proportions set by eye)."""
    turn = np.linspace(0, 2 * math.pi, 32, endpoint=False)
    if shape == "ellipse":
        return np.stack([radius * LONGEST_REACH * np.cos(turn), radius * 0.45 * np.sin(turn)], axis=1)
    if shape == "circle":
        return np.stack([radius * np.cos(turn), radius * np.sin(turn)], axis=1)
    if shape == "square":
        half = radius * 0.8
        return np.array([[-half, -half], [half, -half], [half, half], [-half, half]])
    if shape == "triangle":  # equilateral, inscribed in the circle of `radius`
        corners = np.arange(3) * 2 * math.pi / 3
        return np.stack([radius * np.cos(corners), radius * np.sin(corners)], axis=1)
    if shape == "wedge":  # a long thin triangle: a carrot
        return np.array([[-radius, -radius * 0.5], [radius * 1.2, 0.0], [-radius, radius * 0.5]])
    arc = np.linspace(-0.4 * math.pi, 0.4 * math.pi, 12)  # crescent: outer arc, then a flatter inner arc
    outer = np.stack([radius * 1.3 * np.sin(arc), radius * 0.4 - radius * 0.9 * np.cos(arc)], axis=1)
    inner = np.stack([radius * 1.1 * np.sin(arc[::-1]), radius * 0.4 - radius * 0.2 * np.cos(arc[::-1])], axis=1)
    return np.concatenate([outer, inner])
