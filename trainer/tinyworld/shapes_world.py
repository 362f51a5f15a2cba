"""The shapes world: bouncing circles, squares and triangles on a dark background, described in a caption.

It pre-trains the tiny base model (trainer.pretrain_tiny) and on purpose holds no robot, table or bowl, so
what an adapter adds on the robot world is visible. Deterministic (numpy + PIL, no torch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from trainer.tinyworld.drawing import RGB, SUPERSAMPLE, Canvas, check_clip_shape, outline, rotated, uniform_point

SHAPE_KINDS = ("circle", "square", "triangle")
SHAPE_COLOURS: dict[str, RGB] = {
    "red": (225, 40, 40),
    "green": (50, 190, 70),
    "blue": (50, 100, 240),
    "yellow": (245, 220, 50),
    "purple": (150, 70, 210),
    "orange": (250, 140, 30),
    "white": (240, 240, 240),
    "pink": (250, 130, 190),
}
MAX_SHAPES = 3
SHAPE_RADIUS = (0.07, 0.15)
SPEED = (0.012, 0.05)  # frame widths per frame: slow enough to follow at 8 fps, fast enough to bounce
SLOW_SPEED = 0.025  # below this a shape "drifts", above it "moves"
GROWTH_PROBABILITY, GROWTH_PER_FRAME = 0.3, (1.015, 1.035)  # radius factor per frame (inverted to shrink)
BACKGROUND_LEVEL, BACKGROUND_TINT = (15, 100), 30  # dark, slightly tinted: every shape colour stands out
PLAIN_BACKGROUND_PROBABILITY = 0.5  # otherwise a vertical gradient
DIRECTIONS = (
    "to the right",
    "down and to the right",
    "down",
    "down and to the left",
    "to the left",
    "up and to the left",
    "up",
    "up and to the right",
)  # by 45° sector, y pointing down


@dataclass(frozen=True)
class MovingShape:
    kind: str
    colour: str
    start: tuple[float, float]
    velocity: tuple[float, float]  # frame widths per frame
    radius: float
    growth: float  # radius factor per frame: 1 keeps the size


@dataclass(frozen=True)
class ShapesClip:
    seed: int
    size: int
    num_frames: int
    background: tuple[RGB, RGB]  # top and bottom colour of a vertical gradient (equal: plain)
    shapes: tuple[MovingShape, ...]


def _sample_shape(rng: np.random.Generator, colour: str, num_frames: int) -> MovingShape:
    growth = 1.0
    if rng.random() < GROWTH_PROBABILITY:
        growth = float(rng.uniform(*GROWTH_PER_FRAME)) ** (1 if rng.random() < 0.5 else -1)  # grow or shrink
    radius = float(rng.uniform(*SHAPE_RADIUS))
    largest = radius * max(1.0, growth ** (num_frames - 1))
    heading, speed = rng.uniform(0, 2 * math.pi), rng.uniform(*SPEED)
    return MovingShape(
        kind=SHAPE_KINDS[int(rng.integers(len(SHAPE_KINDS)))],
        colour=colour,
        start=uniform_point(rng, (largest, 1 - largest), (largest, 1 - largest)),
        velocity=(round(speed * math.cos(heading), 5), round(speed * math.sin(heading), 5)),
        radius=round(radius, 4),
        growth=round(growth, 5),
    )


def sample_shapes_clip(seed: int, size: int = 64, num_frames: int = 17) -> ShapesClip:
    """The parameters of one bouncing-shapes clip, all drawn from `seed`."""
    check_clip_shape(size, num_frames)
    rng = np.random.default_rng(seed)
    colours = [str(c) for c in rng.permutation(list(SHAPE_COLOURS))[: int(rng.integers(1, MAX_SHAPES + 1))]]
    shapes = tuple(_sample_shape(rng, colour, num_frames) for colour in colours)
    level = rng.uniform(*BACKGROUND_LEVEL, size=2)
    tints = rng.uniform(-BACKGROUND_TINT, BACKGROUND_TINT, size=(2, 3))
    top, bottom = (tuple(int(v) for v in np.clip(level[i] + tints[i], 0, 255)) for i in range(2))
    plain = rng.random() < PLAIN_BACKGROUND_PROBABILITY
    return ShapesClip(seed, size, num_frames, (top, top if plain else bottom), shapes)


def shape_track(shape: MovingShape, num_frames: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Centre [F, 2] and radius [F] per frame, and the walls hit in order, bouncing elastically."""
    position, velocity = np.array(shape.start), np.array(shape.velocity)
    radii = shape.radius * shape.growth ** np.arange(num_frames)
    centres, walls = [position.copy()], []
    for radius in radii[1:]:
        position = position + velocity
        for axis, (low_wall, high_wall) in enumerate((("left", "right"), ("top", "bottom"))):
            if position[axis] < radius:
                position[axis], velocity[axis] = 2 * radius - position[axis], -velocity[axis]
                walls.append(low_wall)
            elif position[axis] > 1 - radius:
                position[axis], velocity[axis] = 2 * (1 - radius) - position[axis], -velocity[axis]
                walls.append(high_wall)
        centres.append(position.copy())
    return np.stack(centres), radii, walls


def _describe(shape: MovingShape, num_frames: int) -> str:
    vx, vy = shape.velocity
    sector = round(math.atan2(vy, vx) / (math.pi / 4)) % len(DIRECTIONS)
    verb = "drifts" if math.hypot(vx, vy) < SLOW_SPEED else "moves"
    events = [f"{verb} {DIRECTIONS[sector]}"]
    walls = shape_track(shape, num_frames)[2]
    if walls:
        events.append(f"bounces off the {walls[0]} wall")
    if shape.growth != 1.0:
        events.append("grows" if shape.growth > 1 else "shrinks")
    told = events[0] if len(events) == 1 else ", ".join(events[:-1]) + " and " + events[-1]
    article = "an" if shape.colour[0] in "aeiou" else "a"
    return f"{article} {shape.colour} {shape.kind} {told}"


def shapes_caption(clip: ShapesClip) -> str:
    clauses = [_describe(shape, clip.num_frames) for shape in clip.shapes]
    sentence = clauses[0] + "".join(
        (" while " if i == 1 else ", and ") + clause for i, clause in enumerate(clauses[1:], start=1)
    )
    return sentence[0].upper() + sentence[1:] + "."


def _gradient(clip: ShapesClip) -> Image.Image:
    side = clip.size * SUPERSAMPLE
    top, bottom = (np.array(rgb, np.float32) for rgb in clip.background)
    rows = top + (bottom - top) * np.linspace(0, 1, side, dtype=np.float32)[:, None]
    return Image.fromarray(np.repeat(rows[:, None].round().astype(np.uint8), side, axis=1))


def render_shapes_clip(clip: ShapesClip) -> np.ndarray:
    """The clip's frames, uint8 [F, H, W, 3]; the same clip always gives the same bytes."""
    background = _gradient(clip)
    tracks = [shape_track(shape, clip.num_frames)[:2] for shape in clip.shapes]
    frames = []
    for frame in range(clip.num_frames):
        canvas = Canvas(clip.size, background)
        for shape, (centres, radii) in zip(clip.shapes, tracks):
            rgb = SHAPE_COLOURS[shape.colour]
            if shape.kind == "circle":
                canvas.disc(centres[frame], radii[frame], rgb)
            else:  # upright outlines: the caption only speaks of motion, so shapes do not spin
                canvas.polygon(rotated(outline(shape.kind, radii[frame]), -math.pi / 2, centres[frame]), rgb)
        frames.append(canvas.frame())
    return np.stack(frames)
