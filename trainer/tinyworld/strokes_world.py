"""The strokes world: generic moving pictures for pre-training the tiny VAE, with no captions.

A VAE is a codec: it should carry whatever appears in a frame, not only what the DiT is taught to make. The
shapes world alone (three kinds of upright shape in eight colours) taught the tiny VAE too little: thin limbs
and colours it never saw came back as smears. This world draws, in any colour, on any plain or graded
background: discs, rings, boxes and triangles that move and turn, straight sticks of any width, and jointed
sticks (two links from an anchor that may lie outside the frame, with a joint and a small fork at the end)
that bend over time. Nothing here is the robot world: no table, bowl, gripper pair or pick-and-place.
Deterministic (numpy + PIL, no torch).
"""

from __future__ import annotations

import colorsys
import math

import numpy as np
from PIL import Image

from trainer.tinyworld.drawing import RGB, SUPERSAMPLE, Canvas, check_clip_shape, outline, rotated

ELEMENTS = ("disc", "ring", "box", "triangle", "stick", "jointed")
ELEMENT_COUNT = (2, 8)  # per clip, upper bound exclusive
SATURATED_PROBABILITY = 0.6  # else any RGB: greys, browns and pastels matter as much as vivid hues
SPEED, TURN = 0.04, 0.25  # largest drift in frame widths and turn in radians per frame


def random_colour(rng: np.random.Generator) -> RGB:
    if rng.random() < SATURATED_PROBABILITY:
        r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.5, 1.0), rng.uniform(0.45, 1.0))
        return (round(r * 255), round(g * 255), round(b * 255))
    return tuple(int(v) for v in rng.integers(0, 256, 3))


def _background(rng: np.random.Generator, size: int) -> Image.Image:
    side = size * SUPERSAMPLE
    top, bottom = np.array(random_colour(rng), np.float32), np.array(random_colour(rng), np.float32)
    if rng.random() < 0.5:
        bottom = top
    rows = top + (bottom - top) * np.linspace(0, 1, side, dtype=np.float32)[:, None]
    return Image.fromarray(np.repeat(rows[:, None].round().astype(np.uint8), side, axis=1))


def _element(rng: np.random.Generator) -> dict:
    kind = ELEMENTS[int(rng.integers(len(ELEMENTS)))]
    return {
        "kind": kind,
        "colour": random_colour(rng),
        "accent": random_colour(rng),
        "centre": rng.uniform(0.05, 0.95, 2),
        "velocity": rng.uniform(-SPEED, SPEED, 2),
        "angle": rng.uniform(0, 2 * math.pi),
        "turn": rng.uniform(-TURN, TURN),
        "radius": rng.uniform(0.04, 0.2),
        "width": rng.uniform(0.015, 0.09),
        "length": rng.uniform(0.15, 0.6),
        "bend": rng.uniform(0.3, 2.5),
        "bend_speed": rng.uniform(-0.2, 0.2),
    }


def _draw(canvas: Canvas, e: dict, t: int) -> None:
    centre = e["centre"] + t * e["velocity"]
    angle = e["angle"] + t * e["turn"]
    if e["kind"] == "disc":
        canvas.disc(centre, e["radius"], e["colour"])
    elif e["kind"] == "ring":
        canvas.disc(centre, e["radius"], e["colour"])
        canvas.disc(centre, e["radius"] * 0.55, e["accent"])
    elif e["kind"] in ("box", "triangle"):
        shape = "square" if e["kind"] == "box" else "triangle"
        canvas.polygon(rotated(outline(shape, e["radius"]), angle, centre), e["colour"])
    elif e["kind"] == "stick":
        half = 0.5 * e["length"] * np.array([math.cos(angle), math.sin(angle)])
        canvas.segment(centre - half, centre + half, e["width"], e["colour"])
    else:  # jointed: anchor -> joint -> tip, a joint disc and a two-pronged fork at the tip
        link = 0.5 * e["length"]
        joint = centre + link * np.array([math.cos(angle), math.sin(angle)])
        second = angle + e["bend"] + t * e["bend_speed"]
        tip = joint + link * np.array([math.cos(second), math.sin(second)])
        canvas.segment(centre, joint, e["width"], e["colour"])
        canvas.segment(joint, tip, e["width"] * 0.8, e["colour"])
        canvas.disc(joint, e["width"] * 0.35, e["accent"])
        for side in (-1, 1):
            prong = second + side * 0.5
            end = tip + 0.35 * link * np.array([math.cos(prong), math.sin(prong)])
            canvas.segment(tip, end, e["width"] * 0.4, e["accent"])


def render_strokes_clip(seed: int, size: int = 64, num_frames: int = 17) -> np.ndarray:
    """One clip's frames, uint8 [F, H, W, 3], all drawn from `seed`; the same seed always gives the same bytes."""
    check_clip_shape(size, num_frames)
    rng = np.random.default_rng(seed)
    background = _background(rng, size)
    elements = [_element(rng) for _ in range(int(rng.integers(*ELEMENT_COUNT)))]
    frames = []
    for t in range(num_frames):
        canvas = Canvas(size, background)
        for element in elements:
            _draw(canvas, element, t)
        frames.append(canvas.frame())
    return np.stack(frames)
