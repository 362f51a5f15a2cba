"""The sample robot world: a two-armed robot doing pick-and-place on a table, seen from above.

Deterministic (numpy + PIL, no torch). Which arm moves is named in the caption and, for half the targets, only
there: the fine-tuning dataset (`data: "sample"`) is made of this world (trainer.tinyworld.sample_datasets).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from trainer.tinyworld.drawing import LONGEST_REACH, RGB, Canvas, check_clip_shape, outline, rotated, uniform_point

Hand = Literal["left", "right"]
HANDS: tuple[Hand, Hand] = ("left", "right")

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

    @property
    def caption_without_arm(self) -> str:
        """The caption less the one thing the sample dataset teaches: which arm does the work."""
        kind = OBJECT_KINDS[self.target.kind]
        return f"A robot arm picks up the {kind.colour} {self.target.kind} and places it in the bowl."


# --- robot world: sampling ----------------------------------------------------------------------------------------
def _random_angle(rng: np.random.Generator) -> float:
    return round(float(rng.uniform(0, math.pi)), 4)


def _far_enough(point: tuple[float, float], others: list[PlacedObject]) -> bool:
    return all(math.dist(point, o.position) >= MIN_OBJECT_GAP for o in others)


def sample_robot_clip(seed: int, size: int = 64, num_frames: int = 17, any_arm: bool = False) -> RobotClip:
    """The parameters of one pick-and-place clip, all drawn from `seed`. In the sample world a target off the
    middle sits on its arm's side; `any_arm` puts it in any band, so where it lies says nothing of the arm."""
    check_clip_shape(size, num_frames)
    rng = np.random.default_rng(seed)
    hand: Hand = HANDS[int(rng.integers(2))]
    if any_arm:
        band = str(rng.choice(list(BAND_X)))
    else:
        band = "middle" if rng.random() < MIDDLE_BAND_PROBABILITY else hand
    kinds = [str(k) for k in rng.permutation(list(OBJECT_KINDS))]
    objects = [PlacedObject(kinds[0], uniform_point(rng, BAND_X[band], OBJECT_Y), _random_angle(rng))]
    for kind in kinds[1 : 1 + int(rng.integers(1, MAX_DISTRACTORS + 1))]:
        for _ in range(PLACEMENT_TRIES):  # rejection sampling; a distractor that never fits is left out
            point = uniform_point(rng, OBJECT_X, OBJECT_Y)
            if _far_enough(point, objects):
                objects.append(PlacedObject(kind, point, _random_angle(rng)))
                break
    bowl = uniform_point(rng, BOWL_X, BOWL_Y)
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


# --- robot world: rendering ------------------------------------------------------------------------------------------
def _draw_bowl_and_bases(canvas: Canvas, bowl: tuple[float, float]) -> None:
    canvas.disc(bowl, BOWL_RADIUS, BOWL_RIM_RGB)
    canvas.disc(bowl, BOWL_RADIUS - BOWL_RIM, BOWL_INSIDE_RGB)
    for hand in HANDS:
        canvas.disc(SHOULDER[hand], BASE_RADIUS, JOINT_RGB)  # half hidden by the frame edge


def _draw_object(canvas: Canvas, obj: PlacedObject, position) -> None:
    kind = OBJECT_KINDS[obj.kind]
    canvas.polygon(rotated(outline(kind.shape, OBJECT_RADIUS), obj.angle, position), kind.rgb)


def _draw_arm(canvas: Canvas, hand: Hand, tip: np.ndarray, gap: float) -> None:
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
    background = Canvas(clip.size, TABLE_RGB)
    _draw_bowl_and_bases(background, clip.bowl)
    for obj in clip.objects[1:]:  # distractors never move, so they are drawn once
        _draw_object(background, obj, obj.position)
    frames = []
    for t in _clip_times(clip.num_frames):
        canvas = Canvas(clip.size, background.image)
        _draw_object(canvas, clip.target, _object_position(clip, t))
        poses = {hand: (REST_TIP[hand], OPEN_GAP) for hand in HANDS}
        poses[clip.hand] = _active_tip(clip, t)
        for hand, (tip, gap) in poses.items():
            _draw_arm(canvas, hand, tip, gap)
        frames.append(canvas.frame())
    return np.stack(frames)
