"""The generation settings the studio tests render with: every GenerateSettings field at its default (so a new
setting reaches these tests without editing them), made quick for the tiny model on a CPU."""

from __future__ import annotations

from trainer.spec.generate_settings import field_defaults

QUICK_SETTINGS = field_defaults() | {
    "model": "tiny",
    "guardrail": False,
    "steps": 2,
    "guidance": 1.0,
    "height": 64,
    "width": 64,
    "num_frames": 9,
    "fps": 8,
}
