"""Samples during training in a real browser: a run started with sample_every shows its samples in the Train
tab while it trains (the base's first) as filmstrip images, not play buttons, and the strip grows until the run
finishes; picked in Generate & compare, its adapter shows the same filmstrips."""

from __future__ import annotations

import json
import re

import pytest
from test_browser import CHROMIUM, fill_number, screenshot, studio_page

from studio.previews import GAP_PX

RUN = "sampled-run"
STEPS, EVERY = 4, 2  # samples at steps 0, 2 and 4
TRAIN_TIMEOUT_MS = 420_000
PROGRESS_TEXT = re.compile(r"queue:|\b\d+\.\d+s\b")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed at /usr/bin/chromium "
    "(apt-get install chromium; `make test-deps` does it)",
)


def test_sample_videos_appear_while_the_run_trains(tmp_path):
    from playwright.sync_api import expect

    ws = tmp_path / "ws"
    with studio_page(ws, tmp_path / "app.log") as page:
        page.get_by_role("tab", name="Train").click()
        name_box = page.locator("#cfg-name input")
        name_box.fill(RUN)
        name_box.press("Tab")
        for elem_id, value in (
            ("cfg-max_steps", STEPS),
            ("cfg-sample_every", EVERY),
            ("cfg-rank", 4),
            ("cfg-alpha", 4),
            ("cfg-num_frames", 9),
        ):
            fill_number(page, elem_id, value)
        page.get_by_text("Advanced", exact=True).click()
        page.locator("#cfg-cache").get_by_text("off", exact=True).click()
        expect(page.locator("#train-problems")).to_contain_text("The config is valid")
        page.locator("#train-start").click()

        headline = page.locator("#train-headline")
        pictures = page.locator("#train-samples img")
        # The base's two samples come before the first step; two more renders follow, so it still trains.
        expect(pictures).to_have_count(2, timeout=TRAIN_TIMEOUT_MS)
        expect(headline).to_contain_text("training")
        expect(headline).not_to_contain_text("finished")
        expect(page.locator("#train-samples")).to_contain_text("base (step 0)")
        # the live view redraws every second without Gradio's timer text ("0.3s", "processing | 0.3/0.2s"):
        # its status trackers are there and never drawn
        for live in ("#train-headline", "#train-error", "#train-samples"):
            tracker = page.locator(f'{live} [data-testid="status-tracker"]')
            expect(tracker).to_have_count(1)
            assert tracker.evaluate("el => getComputedStyle(el).display") == "none", live
        expect(headline).not_to_contain_text(PROGRESS_TEXT)
        expect(headline).to_contain_text("finished", timeout=TRAIN_TIMEOUT_MS)
        expect(pictures).to_have_count(6, timeout=30_000)  # steps 0, 2 and 4, two prompts each
        expect(page.locator("#train-samples video")).to_have_count(0)
        expect(page.locator("#train-samples")).to_contain_text(f"step {STEPS}")
        sources = [pictures.nth(i).get_attribute("src") for i in range(6)]
        assert all(src and "/samples/" in src and src.endswith(".png") for src in sources), sources
        page.locator("#train-samples").scroll_into_view_if_needed()  # the gallery loads its images lazily
        loaded = "els => els.length === 6 && els.every(img => img.complete && img.naturalWidth > 0)"
        page.wait_for_function(f"() => ({loaded})([...document.querySelectorAll('#train-samples img')])")
        widths = [pictures.nth(i).evaluate("img => img.naturalWidth") for i in range(6)]
        assert widths == [5 * 64 + 4 * GAP_PX] * 6, widths  # filmstrips of 5 frames of the 64 px samples
        for plot in ("#lr-plot", "#grad-norm-plot"):  # every axis label inside its plot: none cut at the edge
            left = page.locator(plot).bounding_box()["x"]
            labels = page.locator(f"{plot} svg text")
            expect(labels.first).to_be_attached()
            boxes = [labels.nth(i).bounding_box() for i in range(labels.count())]
            assert all(box["x"] >= left for box in boxes if box), (plot, boxes)
        page.wait_for_timeout(1000)
        screenshot(page, "samples-train")

        # Generate & compare: picking the run's adapter shows what it drew while training, under its base row
        page.get_by_role("tab", name="Generate & compare").click()
        page.locator("#gen-adapters").get_by_text(RUN, exact=True).click()
        variant_pictures = page.locator("#gen-variant-samples img")
        expect(variant_pictures).to_have_count(4, timeout=30_000)  # steps 0 and 4, two prompts each
        expect(page.locator("#gen-variant-samples")).to_contain_text(f"{RUN} · step {STEPS}")
        expect(page.locator("#gen-variant-samples")).to_contain_text(f"{RUN} · base (step 0)")
        # No empty floor under the two rows, and each caption sits under its filmstrip, not over the arms
        wrap = page.locator("#gen-variant-samples .grid-wrap").bounding_box()
        grid = page.locator("#gen-variant-samples .grid-container").bounding_box()
        assert wrap["height"] <= grid["height"] + 40, (wrap, grid)
        box = variant_pictures.first.bounding_box()
        natural = variant_pictures.first.evaluate("img => [img.naturalWidth, img.naturalHeight]")
        painted = natural[1] * min(box["width"] / natural[0], box["height"] / natural[1])  # object-fit: contain
        caption = page.locator("#gen-variant-samples .caption-label").first.bounding_box()
        assert caption["y"] >= box["y"] + (box["height"] + painted) / 2 - 1, (box, natural, caption)

    events = [json.loads(line) for line in (ws / "runs" / RUN / "metrics.jsonl").read_text().splitlines()]
    assert [e["step"] for e in events if e["event"] == "sample"] == [0, 2, 4]
