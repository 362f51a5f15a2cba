"""Procedural sample worlds: a two-armed robot doing pick-and-place, and generic bouncing shapes.

Both are deterministic (numpy + PIL, no torch) and written in the canonical layout DIR/videos/<key>.mp4 +
DIR/metas/<key>.txt. The robot world is the sample fine-tuning dataset; the shapes world pre-trains the tiny
base model and deliberately has no robot, table or bowl, so what a LoRA adds on the robot world is visible.
Geometry is in frame units (0..1, x to the right, y down) and scaled to pixels only when drawn.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Literal

import numpy as np
from PIL import Image, ImageDraw

Hand = Literal["left", "right"]
HANDS: tuple[Hand, Hand] = ("left", "right")
FPS = 8
SUPERSAMPLE = 4  # shapes are drawn at 4x and box-filtered down: smooth edges at 64 px without blurring
SIZE_MULTIPLE = 16  # the video VAE downsamples by 16 in space
MIN_FRAMES = 9  # 4k+1 frames: the VAE keeps frame 0 and compresses the rest by 4 in time
RGB = tuple[int, int, int]

# --- robot world: look --------------------------------------------------------------------------------------
TABLE_RGB: RGB = (92, 96, 104)  # dark slate: every object and both arms stand out against it
BOWL_RIM_RGB: RGB = (236, 236, 230)
BOWL_INSIDE_RGB: RGB = (150, 154, 160)
ARM_RGB: dict[Hand, RGB] = {"left": (225, 60, 200), "right": (30, 205, 215)}  # magenta vs cyan: no object hue
GRIPPER_RGB: dict[Hand, RGB] = {"left": (150, 30, 135), "right": (10, 130, 140)}
JOINT_RGB: RGB = (40, 40, 48)


@dataclass(frozen=True)
class ObjectKind:
    colour: str
    rgb: RGB
    shape: Literal["ellipse", "circle", "crescent", "square", "wedge"]


OBJECT_KINDS: dict[str, ObjectKind] = {
    "cucumber": ObjectKind("green", (40, 165, 60), "ellipse"),
    "apple": ObjectKind("red", (220, 35, 35), "circle"),
    "banana": ObjectKind("yellow", (250, 215, 40), "crescent"),
    "cube": ObjectKind("blue", (45, 85, 235), "square"),
    "carrot": ObjectKind("orange", (250, 135, 20), "wedge"),
}

# --- robot world: geometry (frame units) ----------------------------------------------------------------------
OBJECT_RADIUS = 0.075  # objects' outlines are scaled by this (the apple's radius)
LONGEST_REACH = 1.25  # the longest outline (the cucumber) reaches this many radii from its centre
BOWL_RADIUS, BOWL_RIM = 0.13, 0.03
SHOULDER = {"left": np.array([-0.02, 0.8]), "right": np.array([1.02, 0.8])}  # just outside the frame
BASE_RADIUS = 0.09
REST_TIP = {"left": np.array([0.26, 0.84]), "right": np.array([0.74, 0.84])}
WRIST_TO_TIP, FINGER_LENGTH = 0.07, 0.105  # fingers reach past the tip, so a held object sits between them
UPPER_ARM_WIDTH, FOREARM_WIDTH, FINGER_WIDTH, JOINT_RADIUS = 0.075, 0.06, 0.028, 0.018
OPEN_GAP, CLOSED_GAP = 0.085, 0.045  # half-distance between fingers; closed just touches an object
# The links telescope: the elbow sits a fixed fraction off the shoulder-wrist line, on the side towards the
# bottom edge. Rigid two-link inverse kinematics folds the elbow far out of the frame (or over the objects)
# whenever the gripper is near its shoulder, as it is at rest.
ELBOW_ALONG, ELBOW_OFFSET = 0.45, 0.16
BOWL_X, BOWL_Y = (0.38, 0.62), (0.14, 0.22)
OBJECT_Y = (BOWL_Y[1] + BOWL_RADIUS + OBJECT_RADIUS * LONGEST_REACH, 0.62)  # never under the bowl
BAND_X = {"left": (0.14, 0.32), "middle": (0.42, 0.58), "right": (0.68, 0.86)}
OBJECT_X = (0.14, 0.86)
MIDDLE_BAND_PROBABILITY = 0.5  # half the targets sit where either hand could reach: only the prompt decides
MAX_DISTRACTORS, MIN_OBJECT_GAP, PLACEMENT_TRIES = 3, 0.18, 200

# --- robot world: timeline (fractions of the clip) --------------------------------------------------------------
REACH_END, GRASP_END, CARRY_END, RELEASE_END = 0.3, 0.4, 0.7, 0.8  # then return to rest until 1.0
GRASPED_AT, RELEASED_AT = 0.35, 0.75  # the object follows the gripper between these


@dataclass(frozen=True)
class PlacedObject:
    kind: str
    position: tuple[float, float]
    angle: float  # radians; the object's long axis


@dataclass(frozen=True)
class RobotClip:
    seed: int
    size: int
    num_frames: int
    hand: Hand
    band: str  # where the target sits: "left", "middle" or "right"
    objects: tuple[PlacedObject, ...]  # objects[0] is the one picked up
    bowl: tuple[float, float]

    @property
    def target(self) -> PlacedObject:
        return self.objects[0]

    @property
    def caption(self) -> str:
        kind = OBJECT_KINDS[self.target.kind]
        return f"The {self.hand} arm picks up the {kind.colour} {self.target.kind} and places it in the bowl."


def clip_shape_problems(size: int, num_frames: int, names: tuple[str, str] = ("size", "num_frames")) -> list[str]:
    """Every reason `size` and `num_frames` cannot make a clip, one sentence each naming the field (empty: fine)."""
    problems = []
    if size < SIZE_MULTIPLE or size % SIZE_MULTIPLE:
        problems.append(f"{names[0]} must be a positive multiple of {SIZE_MULTIPLE} (e.g. 64 or 96), got {size}.")
    if num_frames < MIN_FRAMES or (num_frames - 1) % 4:
        problems.append(f"{names[1]} must be 4k+1 and at least {MIN_FRAMES} (e.g. 17 or 33), got {num_frames}.")
    return problems


def _check_clip_shape(size: int, num_frames: int) -> None:
    problems = clip_shape_problems(size, num_frames)
    if problems:
        raise ValueError(" ".join(problems))


# --- robot world: sampling ----------------------------------------------------------------------------------------
def _uniform_point(rng: np.random.Generator, xs: tuple[float, float], ys: tuple[float, float]) -> tuple[float, float]:
    return (round(float(rng.uniform(*xs)), 4), round(float(rng.uniform(*ys)), 4))


def _random_angle(rng: np.random.Generator) -> float:
    return round(float(rng.uniform(0, math.pi)), 4)


def _far_enough(point: tuple[float, float], others: list[PlacedObject]) -> bool:
    return all(math.dist(point, o.position) >= MIN_OBJECT_GAP for o in others)


def sample_robot_clip(seed: int, size: int = 64, num_frames: int = 17) -> RobotClip:
    """The parameters of one pick-and-place clip, all drawn from `seed`."""
    _check_clip_shape(size, num_frames)
    rng = np.random.default_rng(seed)
    hand: Hand = HANDS[int(rng.integers(2))]
    band = "middle" if rng.random() < MIDDLE_BAND_PROBABILITY else hand
    kinds = [str(k) for k in rng.permutation(list(OBJECT_KINDS))]
    objects = [PlacedObject(kinds[0], _uniform_point(rng, BAND_X[band], OBJECT_Y), _random_angle(rng))]
    for kind in kinds[1 : 1 + int(rng.integers(1, MAX_DISTRACTORS + 1))]:
        for _ in range(PLACEMENT_TRIES):  # rejection sampling; a distractor that never fits is left out
            point = _uniform_point(rng, OBJECT_X, OBJECT_Y)
            if _far_enough(point, objects):
                objects.append(PlacedObject(kind, point, _random_angle(rng)))
                break
    bowl = _uniform_point(rng, BOWL_X, BOWL_Y)
    return RobotClip(seed, size, num_frames, hand, band, tuple(objects), bowl)


# --- robot world: motion -------------------------------------------------------------------------------------------
def _ease(u: float) -> float:
    """Smoothstep: arms start and stop gently instead of jerking between keyframes."""
    u = min(max(u, 0.0), 1.0)
    return u * u * (3 - 2 * u)


def _between(t: float, start: float, end: float) -> float:
    return _ease((t - start) / (end - start))


def _active_tip(clip: RobotClip, t: float) -> tuple[np.ndarray, float]:
    """Where the working gripper's tip is at clip time t (0..1), and its finger gap."""
    rest, target, bowl = REST_TIP[clip.hand], np.array(clip.target.position), np.array(clip.bowl)
    if t < REACH_END:
        return rest + (target - rest) * _between(t, 0, REACH_END), OPEN_GAP
    if t < GRASP_END:
        return target, OPEN_GAP + (CLOSED_GAP - OPEN_GAP) * _between(t, REACH_END, GRASP_END)
    if t < CARRY_END:
        return target + (bowl - target) * _between(t, GRASP_END, CARRY_END), CLOSED_GAP
    if t < RELEASE_END:
        return bowl, CLOSED_GAP + (OPEN_GAP - CLOSED_GAP) * _between(t, CARRY_END, RELEASE_END)
    return bowl + (rest - bowl) * _between(t, RELEASE_END, 1.0), OPEN_GAP


def _clip_times(num_frames: int) -> np.ndarray:
    return np.linspace(0.0, 1.0, num_frames)


def hand_position_track(clip: RobotClip) -> dict[Hand, np.ndarray]:
    """Each gripper tip's pixel position per frame ({hand: [F, 2] as x, y}); the idle hand stays at rest."""
    track = {hand: np.repeat(REST_TIP[hand][None], clip.num_frames, axis=0) for hand in HANDS}
    track[clip.hand] = np.stack([_active_tip(clip, t)[0] for t in _clip_times(clip.num_frames)])
    return {hand: positions * clip.size for hand, positions in track.items()}


def _object_position(clip: RobotClip, t: float) -> np.ndarray:
    if t < GRASPED_AT:
        return np.array(clip.target.position)
    if t < RELEASED_AT:
        return _active_tip(clip, t)[0]
    return np.array(clip.bowl)


def _elbow(hand: Hand, wrist: np.ndarray) -> np.ndarray:
    reach = wrist - SHOULDER[hand]
    towards_bottom = np.array([-reach[1], reach[0]]) * (1 if reach[0] >= 0 else -1)  # the normal with y >= 0
    return SHOULDER[hand] + ELBOW_ALONG * reach + ELBOW_OFFSET * towards_bottom


# --- drawing (shared by both worlds) -----------------------------------------------------------------------------
class _Canvas:
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


def _rotated(points: np.ndarray, angle: float, center) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return points @ np.array([[c, s], [-s, c]]) + np.asarray(center)


def _outline(shape: str, radius: float) -> np.ndarray:
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


# --- robot world: rendering ------------------------------------------------------------------------------------------
def _draw_bowl_and_bases(canvas: _Canvas, bowl: tuple[float, float]) -> None:
    canvas.disc(bowl, BOWL_RADIUS, BOWL_RIM_RGB)
    canvas.disc(bowl, BOWL_RADIUS - BOWL_RIM, BOWL_INSIDE_RGB)
    for hand in HANDS:
        canvas.disc(SHOULDER[hand], BASE_RADIUS, JOINT_RGB)  # half hidden by the frame edge


def _draw_object(canvas: _Canvas, obj: PlacedObject, position) -> None:
    kind = OBJECT_KINDS[obj.kind]
    canvas.polygon(_rotated(_outline(kind.shape, OBJECT_RADIUS), obj.angle, position), kind.rgb)


def _draw_arm(canvas: _Canvas, hand: Hand, tip: np.ndarray, gap: float) -> None:
    reach = tip - SHOULDER[hand]
    along = reach / np.hypot(*reach)  # the gripper points away from its shoulder
    across = np.array([-along[1], along[0]])
    wrist = tip - along * WRIST_TO_TIP
    elbow = _elbow(hand, wrist)
    canvas.segment(SHOULDER[hand], elbow, UPPER_ARM_WIDTH, ARM_RGB[hand])
    canvas.segment(elbow, wrist, FOREARM_WIDTH, ARM_RGB[hand])
    canvas.segment(wrist - across * gap, wrist + across * gap, FINGER_WIDTH, GRIPPER_RGB[hand])  # palm
    for side in (-1, 1):
        finger_base = wrist + side * across * gap
        canvas.segment(finger_base, finger_base + along * FINGER_LENGTH, FINGER_WIDTH, GRIPPER_RGB[hand])
    for joint in (SHOULDER[hand], elbow, wrist):
        canvas.disc(joint, JOINT_RADIUS, JOINT_RGB)


def render_robot_clip(clip: RobotClip) -> np.ndarray:
    """The clip's frames, uint8 [F, H, W, 3]; the same clip always gives the same bytes."""
    background = _Canvas(clip.size, TABLE_RGB)
    _draw_bowl_and_bases(background, clip.bowl)
    for obj in clip.objects[1:]:  # distractors never move, so they are drawn once
        _draw_object(background, obj, obj.position)
    frames = []
    for t in _clip_times(clip.num_frames):
        canvas = _Canvas(clip.size, background.image)
        _draw_object(canvas, clip.target, _object_position(clip, t))
        poses = {hand: (REST_TIP[hand], OPEN_GAP) for hand in HANDS}
        poses[clip.hand] = _active_tip(clip, t)
        for hand, (tip, gap) in poses.items():
            _draw_arm(canvas, hand, tip, gap)
        frames.append(canvas.frame())
    return np.stack(frames)


# --- robot world: which hand moved ---------------------------------------------------------------------------------
ARM_COLOUR_TOLERANCE = 70.0  # RGB distance still counted as arm: survives H.264 and soft, generated frames
MIN_MOVED_FRACTION = 0.003  # of the frame's pixels, averaged over frames: less and no arm really moved
DOMINANCE = 2.0  # the moving arm must change this many times more pixels than the other one


def _arm_mask(frames: np.ndarray, hand: Hand) -> np.ndarray:
    pixels = frames.astype(np.float32)
    near = [np.linalg.norm(pixels - np.array(rgb, np.float32), axis=-1) < ARM_COLOUR_TOLERANCE
            for rgb in (ARM_RGB[hand], GRIPPER_RGB[hand])]
    return near[0] | near[1]


def arm_motion(frames: np.ndarray) -> dict[Hand, float]:
    """Per hand: the fraction of pixels whose arm colour differs from frame 0, averaged over frames."""
    motion = {}
    for hand in HANDS:
        mask = _arm_mask(frames, hand)
        motion[hand] = float((mask[1:] != mask[:1]).mean())
    return motion


def which_hand_moved(frames: np.ndarray) -> Literal["left", "right", "unclear"]:
    """Which arm moved in a robot-world video (uint8 [F, H, W, 3]), from the arms' colours alone."""
    motion = arm_motion(frames)
    moved, still = sorted(HANDS, key=motion.get, reverse=True)
    if motion[moved] < MIN_MOVED_FRACTION or motion[moved] < DOMINANCE * motion[still]:
        return "unclear"
    return moved


# --- shapes world --------------------------------------------------------------------------------------------------
SHAPE_KINDS = ("circle", "square", "triangle")
SHAPE_COLOURS: dict[str, RGB] = {
    "red": (225, 40, 40), "green": (50, 190, 70), "blue": (50, 100, 240), "yellow": (245, 220, 50),
    "purple": (150, 70, 210), "orange": (250, 140, 30), "white": (240, 240, 240), "pink": (250, 130, 190),
}
MAX_SHAPES = 3
SHAPE_RADIUS = (0.07, 0.15)
SPEED = (0.012, 0.05)  # frame widths per frame: slow enough to follow at 8 fps, fast enough to bounce
SLOW_SPEED = 0.025  # below this a shape "drifts", above it "moves"
GROWTH_PROBABILITY, GROWTH_PER_FRAME = 0.3, (1.015, 1.035)  # radius factor per frame (inverted to shrink)
BACKGROUND_LEVEL, BACKGROUND_TINT = (15, 100), 30  # dark, slightly tinted: every shape colour stands out
PLAIN_BACKGROUND_PROBABILITY = 0.5  # otherwise a vertical gradient
DIRECTIONS = ("to the right", "down and to the right", "down", "down and to the left",
              "to the left", "up and to the left", "up", "up and to the right")  # by 45° sector, y pointing down


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
        kind=SHAPE_KINDS[int(rng.integers(len(SHAPE_KINDS)))], colour=colour,
        start=_uniform_point(rng, (largest, 1 - largest), (largest, 1 - largest)),
        velocity=(round(speed * math.cos(heading), 5), round(speed * math.sin(heading), 5)),
        radius=round(radius, 4), growth=round(growth, 5),
    )


def sample_shapes_clip(seed: int, size: int = 64, num_frames: int = 17) -> ShapesClip:
    """The parameters of one bouncing-shapes clip, all drawn from `seed`."""
    _check_clip_shape(size, num_frames)
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
        canvas = _Canvas(clip.size, background)
        for shape, (centres, radii) in zip(clip.shapes, tracks):
            rgb = SHAPE_COLOURS[shape.colour]
            if shape.kind == "circle":
                canvas.disc(centres[frame], radii[frame], rgb)
            else:  # upright outlines: the caption only speaks of motion, so shapes do not spin
                canvas.polygon(_rotated(_outline(shape.kind, radii[frame]), -math.pi / 2, centres[frame]), rgb)
        frames.append(canvas.frame())
    return np.stack(frames)


# --- writing datasets -----------------------------------------------------------------------------------------------
VIDEO_CRF = 10  # near-lossless H.264 (0 would need the 4:4:4 profile that browsers cannot play)
SEEDS_PER_DATASET_SEED, HELD_OUT_SEED_OFFSET = 1_000_000, 500_000  # clip seeds of two splits never collide


def _write_mp4(path: Path, frames: np.ndarray, fps: int) -> None:
    """Private H.264 writer until trainer.video.write_video exists (then use that one)."""
    import imageio_ffmpeg  # imported here: rendering frames needs no ffmpeg

    height, width = frames.shape[1:3]
    writer = imageio_ffmpeg.write_frames(
        str(path), (width, height), fps=fps, codec="libx264", pix_fmt_out="yuv420p", quality=None,
        macro_block_size=1, output_params=["-crf", str(VIDEO_CRF)],  # block size 1: 64x64 stays 64x64
    )
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()


def _write_clip(folder: Path, key: str, frames: np.ndarray, caption: str) -> None:
    (folder / "videos").mkdir(parents=True, exist_ok=True)
    (folder / "metas").mkdir(parents=True, exist_ok=True)
    _write_mp4(folder / "videos" / f"{key}.mp4", frames, FPS)
    (folder / "metas" / f"{key}.txt").write_text(caption + "\n", encoding="utf-8")


def _clip_seed(seed: int, index: int, held_out: bool = False) -> int:
    return seed * SEEDS_PER_DATASET_SEED + (HELD_OUT_SEED_OFFSET if held_out else 0) + index


def _robot_entry(key: str, clip: RobotClip) -> dict:
    kind = OBJECT_KINDS[clip.target.kind]
    return {
        "key": key, "seed": clip.seed, "caption": clip.caption, "object": clip.target.kind,
        "colour": kind.colour, "shape": kind.shape, "hand": clip.hand, "band": clip.band,
        "object_position": list(clip.target.position), "bowl_position": list(clip.bowl),
        "distractors": [{"object": o.kind, "colour": OBJECT_KINDS[o.kind].colour, "position": list(o.position)}
                        for o in clip.objects[1:]],
    }


def _check_counts(**counts: int) -> None:
    for name, count in counts.items():
        if not 0 <= count < HELD_OUT_SEED_OFFSET:
            raise ValueError(f"{name} must be between 0 and {HELD_OUT_SEED_OFFSET - 1}, got {count}.")


def make_robot_dataset(out_dir: str | Path, train_clips: int = 48, held_out_clips: int = 12, size: int = 64,
                       num_frames: int = 17, seed: int = 0, on_clip: Callable[[str], None] | None = None) -> dict:
    """Write OUT/train and OUT/held_out (canonical layout), OUT/manifest.json and OUT/README.md."""
    _check_clip_shape(size, num_frames)
    _check_counts(train_clips=train_clips, held_out_clips=held_out_clips)
    out = Path(out_dir)
    manifest = {"world": "robot", "seed": seed, "size": size, "num_frames": num_frames, "fps": FPS, "splits": {}}
    for split, count in (("train", train_clips), ("held_out", held_out_clips)):
        entries = []
        for index in range(count):
            clip = sample_robot_clip(_clip_seed(seed, index, held_out=split == "held_out"), size, num_frames)
            key = f"{split}_{index:04d}"
            _write_clip(out / split, key, render_robot_clip(clip), clip.caption)
            entries.append(_robot_entry(key, clip))
            if on_clip:
                on_clip(key)
        manifest["splits"][split] = entries
    _write_manifest_and_readme(out, manifest, ROBOT_README)
    return manifest


def make_shapes_dataset(out_dir: str | Path, clips: int = 256, size: int = 64, num_frames: int = 17, seed: int = 0,
                        on_clip: Callable[[str], None] | None = None) -> dict:
    """Write OUT/videos + OUT/metas (canonical layout), OUT/manifest.json and OUT/README.md."""
    _check_clip_shape(size, num_frames)
    _check_counts(clips=clips)
    out = Path(out_dir)
    entries = []
    for index in range(clips):
        clip = sample_shapes_clip(_clip_seed(seed, index), size, num_frames)
        key = f"shapes_{index:04d}"
        _write_clip(out, key, render_shapes_clip(clip), shapes_caption(clip))
        entries.append({"key": key, "caption": shapes_caption(clip), **asdict(clip)})
        if on_clip:
            on_clip(key)
    manifest = {"world": "shapes", "seed": seed, "size": size, "num_frames": num_frames, "fps": FPS, "clips": entries}
    _write_manifest_and_readme(out, manifest, SHAPES_README)
    return manifest


def _write_manifest_and_readme(out: Path, manifest: dict, readme: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    (out / "README.md").write_text(readme.format(**manifest), encoding="utf-8")


ROBOT_README = """# Sample robot world

A fixed top-down camera over a slate table. A two-armed robot (magenta left arm from the left edge, cyan right
arm from the right edge, each ending in a two-finger gripper) and a white bowl. Each clip is one pick-and-place:
the named arm reaches from rest to one object, closes its gripper, carries the object into the bowl, lets go and
returns to rest; the other arm stays still. Objects: green cucumber (ellipse), red apple (circle), yellow banana
(crescent), blue cube (square), orange carrot (wedge), with 1-3 of them as distractors. Half the targets lie in
the middle band, where either arm could take them: only the prompt says which arm.

- `train/` and `held_out/`: canonical layout, `videos/<key>.mp4` ({size}x{size}, {num_frames} frames, {fps} fps)
  and `metas/<key>.txt` (the prompt).
- `manifest.json`: per clip the seed, caption, object, colour, hand, band and positions (frame units 0..1, x to
  the right, y down; multiply by the size for pixels). The two splits never share a seed.
- Re-render a clip with `trainer.tinyworld.sample_world.render_robot_clip(sample_robot_clip(seed, size, num_frames))`;
  score which arm moved in any video of this world with `trainer.tinyworld.sample_world.which_hand_moved(frames)`.

Made by `python -m trainer make-sample-data --world robot --seed {seed}`.
"""

SHAPES_README = """# Shapes world

1-3 circles, squares and triangles of distinct colours on a dark plain or gradient background, moving at constant
velocity, bouncing off the walls, some growing or shrinking. It pre-trains the tiny base model and on purpose
holds no robot, table or bowl. Canonical layout: `videos/<key>.mp4` ({size}x{size}, {num_frames} frames,
{fps} fps) and `metas/<key>.txt`; `manifest.json` holds every clip's parameters.

Made by `python -m trainer make-sample-data --world shapes --seed {seed}`.
"""
