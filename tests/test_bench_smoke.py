"""bench/bench.py --smoke runs on CPU and reports both timings and the cached vs uncached ratio (values are not
asserted: timing belongs in bench/, not in tests). Also checks that bench/configs build the real sizes."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import torch
from conftest import REPO


def test_smoke_reports_cached_and_uncached_step_times_and_their_ratio(tmp_path):
    result = subprocess.run(
        [sys.executable, "bench/bench.py", "--smoke", "--steps", "3", "--gen-steps", "2", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    payload = json.loads((tmp_path / "results-cpu.json").read_text())
    modes = {m["mode"]: m for m in payload["modes"]}
    assert set(modes) == {"studio-uncached", "studio"}
    assert modes["studio"]["cache_items"] > 0 and "cache_build_s" not in modes["studio-uncached"]
    for m in modes.values():
        assert m["steps"] == 3 and m["s_per_step"] > 0 and len(m["losses"]) == 3
    # same weights, noise and data: the cache changes the time, not the loss
    assert modes["studio"]["losses"] == pytest.approx(modes["studio-uncached"]["losses"], rel=1e-5)
    assert payload["generation"]["steps"] == 2 and payload["generation"]["seconds"] > 0

    text = (tmp_path / "RESULTS.md").read_text()
    cpu = text.split("<!-- bench:cpu:begin -->")[1].split("<!-- bench:cpu:end -->")[0]
    ratio = re.search(r"Cached vs uncached step time \(studio-uncached ÷ studio[^)]*\): ([0-9.]+)x", cpu)
    assert ratio and float(ratio.group(1)) == pytest.approx(
        modes["studio-uncached"]["s_per_step"] / modes["studio"]["s_per_step"], abs=0.006
    )
    for name in ("studio-uncached", "studio"):
        assert re.search(rf"\| {name} \| [0-9.]+ \(of 3\) \|", cpu)
    assert "Not measured yet" in text.split("<!-- bench:gpu:begin -->")[1]  # the GPU section is left alone


def test_bench_configs_build_the_real_component_sizes():
    """Counted on the meta device (nothing allocated): reference notes §1."""
    sys.path.insert(0, str(REPO))
    from bench.inputs import build_full_pipeline

    pipe = build_full_pipeline(torch.device("meta"), torch.bfloat16)
    count = {
        name: sum(p.numel() for p in getattr(pipe, name).parameters())
        for name in ("transformer", "vae", "text_encoder")
    }
    assert count["transformer"] == pytest.approx(2.059e9, rel=1e-3)
    assert count["vae"] == pytest.approx(126.9e6, rel=1e-3)
    assert count["text_encoder"] == pytest.approx(8.29e9, rel=1e-2)
    assert pipe.transformer.config.crossattn_proj_in_channels == 28 * 3584
