"""Evaluate in a real browser: base vs an adapter and one of its run's checkpoints (picked as `robot@step-3`),
scored on a held-out clip; the numbers in the page are the ones saved in compare.json and the card. An older
checkpoint without a loadable adapter is named with the reason instead of vanishing."""

from __future__ import annotations

import json
import shutil

import pytest
from adapterfactory import make_adapter
from test_browser import CHROMIUM, fill_number, screenshot, studio_page

EVALUATE_TIMEOUT_MS = 300_000

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium")


def _workspace(ws):
    run = ws / "runs" / "robot"
    make_adapter(run / "adapter")
    shutil.copytree(run / "adapter", run / "checkpoints" / "step-3")
    (run / "checkpoints" / "step-3" / "DONE").write_text("complete\n")
    (run / "checkpoints" / "step-1").mkdir()
    (run / "checkpoints" / "step-1" / "adapter_state.safetensors").write_bytes(b"weights")
    (run / "checkpoints" / "step-1" / "DONE").write_text("complete\n")
    return run


def test_evaluate_base_adapter_and_checkpoint_in_a_real_browser(tmp_path):
    from playwright.sync_api import expect

    ws = tmp_path / "ws"
    run = _workspace(ws)
    with studio_page(ws, tmp_path / "app.log") as page:
        page.get_by_role("tab", name="Generate & compare").click()
        picker = page.locator("#gen-adapters")
        expect(picker.get_by_text("robot@step-3", exact=True)).to_be_visible(timeout=30_000)
        expect(picker.get_by_text("robot@step-1", exact=True)).to_have_count(0)
        expect(page.locator("#gen-unusable")).to_contain_text("robot@step-1")
        expect(page.locator("#gen-unusable")).to_contain_text("saved before checkpoints held a loadable adapter")
        picker.get_by_text("robot", exact=True).click()
        picker.get_by_text("robot@step-3", exact=True).click()
        fill_number(page, "gen-steps", 2)
        fill_number(page, "gen-num_frames", 9)
        fill_number(page, "eval-clips", 1)
        page.locator("#eval-go").click()
        status = page.locator("#eval-status")
        expect(status).to_contain_text("Scored on 1 clip(s) of sample:held_out", timeout=EVALUATE_TIMEOUT_MS)
        expect(page.locator("#gen-videos video")).to_have_count(3, timeout=30_000)
        table = page.locator("#eval-scores")
        expect(table).to_contain_text("robot@step-3")
        page.wait_for_timeout(1000)
        shown = table.inner_text()
        screenshot(page, "evaluate-fake-adapter")  # the README's evaluate.png is a real run: docs/make-pictures.sh

    (out_dir,) = [p for p in (ws / "generations").iterdir() if (p / "compare.json").exists()]
    scores = json.loads((out_dir / "compare.json").read_text())["evaluation"]["variants"]
    assert set(scores) == {"base", "robot", "robot@step-3"}
    for name, values in scores.items():
        assert name in shown
        assert str(round(values["psnr"], 2)) in shown and str(round(values["val_loss"], 4)) in shown
    card = json.loads((run / "checkpoints" / "step-3" / "adapter_card.json").read_text())
    assert card["evaluation"]["scores"] == scores["robot@step-3"]


def test_every_checkpoint_is_scored_and_the_best_marked_in_a_real_browser(tmp_path):
    """Evaluate with "every checkpoint of the picked runs": both checkpoints of the run are scored, plotted against
    the step, and the best one (lowest val loss) is named in the page, as compare.json records it."""
    from playwright.sync_api import expect

    ws = tmp_path / "ws"
    run = ws / "runs" / "robot"
    make_adapter(run / "adapter")  # its card says 3 steps: the step-3 checkpoint's twin, scored once
    shutil.copytree(run / "adapter", run / "checkpoints" / "step-3")
    make_adapter(run / "checkpoints" / "step-2", seed=1)
    for step in (2, 3):
        (run / "checkpoints" / f"step-{step}" / "DONE").write_text("complete\n")
    with studio_page(ws, tmp_path / "app.log") as page:
        page.get_by_role("tab", name="Generate & compare").click()
        page.locator("#gen-adapters").get_by_text("robot", exact=True).click()
        fill_number(page, "gen-steps", 2)
        fill_number(page, "gen-num_frames", 9)
        fill_number(page, "eval-clips", 1)
        page.locator("#eval-checkpoints input").check()
        page.locator("#eval-go").click()
        status = page.locator("#eval-status")
        expect(status).to_contain_text("Best checkpoint: robot@step-", timeout=EVALUATE_TIMEOUT_MS)
        expect(page.locator("#eval-curve")).to_be_visible()
        table = page.locator("#eval-scores")
        expect(table).to_contain_text("robot@step-2")
        expect(table).to_contain_text("robot@step-3")
        shown = status.inner_text()

    (out_dir,) = [p for p in (ws / "generations").iterdir() if (p / "compare.json").exists()]
    evaluation = json.loads((out_dir / "compare.json").read_text())["evaluation"]
    assert set(evaluation["variants"]) == {"base", "robot@step-2", "robot@step-3"}
    best = evaluation["checkpoints"]["best"]
    assert best == min(evaluation["checkpoints"]["points"][1:], key=lambda p: p["val_loss"])
    assert f"Best checkpoint: {best['variant']} (step {best['step']}: val loss {best['val_loss']:.4f}" in shown
