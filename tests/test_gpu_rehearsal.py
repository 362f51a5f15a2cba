"""bench/gpu.sh end to end on the CPU (`--rehearse`: the tiny model's configs at a toy size), so the first GPU run
meets no untried line: every stage runs, and results-gpu.json has bench/bench.py's schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import REPO


def test_gpu_script_rehearses_every_stage_and_writes_the_results_schema(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable, "BUDGET_S": "900"}
    result = subprocess.run(
        ["bash", "bench/gpu.sh", "--rehearse"], cwd=REPO, env=env, capture_output=True, text=True, timeout=960
    )
    log = (out / "gpu.log").read_text()
    assert result.returncode == 0, log[-4000:]
    payload = json.loads((out / "results-gpu.json").read_text())
    assert payload["section"] == "gpu" and payload["rehearsal"] is True
    assert payload["size"] == {"height": 64, "width": 64, "frames": 9, "batch": 1, "rank": 32, "precision": "bf16"}
    assert payload["device"].startswith("CPU") and payload["flops"]["tokens"] == 3 * 4 * 4
    modes = {m["mode"]: m for m in payload["modes"]}
    assert set(modes) == {"reference", "studio-no-compile", "studio-dora", "studio"}, log[-4000:]
    for m in modes.values():
        assert m["s_per_step"] > 0 and m["steps"] == 1 and "mfu" in m
        assert m["estimate_gib"] > 0 and set(m["estimate_parts_gib"]) >= {"frozen weights", "activations", "margin"}
        assert "peak_allocated_gib" not in m  # no CUDA: no peak is claimed
    assert "encoders" in modes["reference"]["estimate_parts_gib"]  # the reference runs the encoders every step
    assert "encoders" not in modes["studio"]["estimate_parts_gib"]
    assert [g["memory"] for g in payload["generation_modes"]] == ["full", "offload"]
    assert all(g["frames"] == 9 and g["estimate_gib"] > 0 for g in payload["generation_modes"])
    assert payload["pytest_gpu"]["rc"] == 0 and "skipped" in payload["pytest_gpu"]["summary"]
    text = (out / "RESULTS.md").read_text()
    assert "**Rehearsal: the tiny model's configs on a CPU at a toy size; not GPU numbers.**" in text
    assert "| reference |" in text and "- Generation, memory offload:" in text
    assert [line["stage"] for line in map(json.loads, (out / "stages.jsonl").read_text().splitlines())] == [
        "env",
        "train",
        "train",
        "train",
        "train",
        "generate",
        "generate",
        "pytest",
    ]
