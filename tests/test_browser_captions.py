"""Captions written for you, in a real browser: the Data tab proposes captions for the clips without one (with a
tiny random Qwen2.5-VL the owner names in COSMOS_STUDIO_CAPTION_MODEL), one proposal is accepted, another
rejected, and only the accepted one is saved."""

from __future__ import annotations

import pytest
from test_browser import CHROMIUM, screenshot, studio_page

from studio.caption_controller import CAPTION_MODEL_ENV, PROPOSALS_DIR
from tests.datafactory import canonical_dataset

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium")


def test_a_proposal_accepted_and_one_rejected_only_the_accepted_is_saved(tmp_path, tiny_vlm):
    from playwright.sync_api import expect

    ws = tmp_path / "ws"
    root = canonical_dataset(ws / "datasets" / "boxes", {"a": "A red box.", "b": None, "c": None})
    with studio_page(ws, tmp_path / "app.log", env={CAPTION_MODEL_ENV: str(tiny_vlm)}) as page:
        page.locator("#data-dataset input").click()
        page.get_by_role("option", name="datasets/boxes", exact=True).click()
        expect(page.locator("#data-summary")).to_contain_text("3 clips in datasets/boxes", timeout=30_000)
        expect(page.locator("#data-caption-offer")).to_contain_text(f"({CAPTION_MODEL_ENV})")
        page.get_by_role("button", name="Write missing captions").click()
        status = page.locator("#data-caption-status")
        expect(status).to_contain_text("2 caption(s) proposed", timeout=180_000)
        expect(page.locator("#data-proposals")).to_contain_text("b")
        text = page.locator("#data-proposal-text textarea")
        expect(text).not_to_have_value("", timeout=10_000)
        accepted = text.input_value()
        page.get_by_role("button", name="Accept").click()
        expect(status).to_contain_text("Caption of 'b' saved", timeout=30_000)
        expect(page.locator("#data-proposal-clip input")).to_have_value("c", timeout=10_000)
        screenshot(page, "captions")
        page.get_by_role("button", name="Reject").click()
        expect(status).to_contain_text("Proposal for 'c' rejected", timeout=30_000)
        # The report was checked again: only c still misses its caption.
        report = page.locator("#data-report")
        expect(report).not_to_contain_text("no metas/b.txt", timeout=30_000)
        expect(report).to_contain_text("missing caption (no metas/c.txt)")
    assert (root / "metas" / "b.txt").read_text() == accepted.strip() + "\n"
    assert not (root / "metas" / "c.txt").exists()
    assert (root / "metas" / "a.txt").read_text() == "A red box."
    assert list((root / PROPOSALS_DIR).glob("*.txt")) == []
