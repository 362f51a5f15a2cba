"""Which arm moved in a video of the sample robot world, from the arms' colours alone.

`evaluate` uses it to score instruction following: the arm that moves in a generated clip should be the arm its
caption names.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from trainer.tinyworld.robot_world import ARM_RGB, GRIPPER_RGB, HANDS, Hand

ARM_COLOUR_TOLERANCE = 70.0  # RGB distance still counted as arm: survives H.264 and soft, generated frames
MIN_MOVED_FRACTION = 0.003  # of the frame's pixels, averaged over frames: less and no arm really moved
DOMINANCE = 2.0  # the moving arm must change this many times more pixels than the other one


def _arm_mask(frames: np.ndarray, hand: Hand) -> np.ndarray:
    pixels = frames.astype(np.float32)
    near = [
        np.linalg.norm(pixels - np.array(rgb, np.float32), axis=-1) < ARM_COLOUR_TOLERANCE
        for rgb in (ARM_RGB[hand], GRIPPER_RGB[hand])
    ]
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
