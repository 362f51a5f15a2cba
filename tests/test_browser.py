"""The studio in a real browser: headless Chromium (Debian's `chromium`) driven by playwright.

Opens the page, picks the sample dataset, starts a short training run, watches the loss curve grow until the
run finishes, compares the base model with the new adapter and sees both videos. Screenshots of every tab go to
artifacts/browser/; with STUDIO_SCREENSHOTS_DIR set they are also written there, small enough for the README
(that is how docs/screenshots/ is made: STUDIO_SCREENSHOTS_DIR=docs/screenshots STUDIO_BROWSER_STEPS=30 ...;
evaluate.png alone shows a real run, the CPU preset's: docs/make-pictures.sh takes it).
"""

from __future__ import annotations

import json
import os
import re
from contextlib import contextmanager
from pathlib import Path

import pytest
from test_studio_app import running_app

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "artifacts" / "browser"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
STEPS = int(os.environ.get("STUDIO_BROWSER_STEPS", "3"))
RUN = "browser-run"
TRAIN_TIMEOUT_MS = 240_000 + STEPS * 3_000
GENERATE_TIMEOUT_MS = 180_000
README_WIDTH = 1100  # README screenshots are scaled to this width and palette-quantized (< 300 KB each)

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed at /usr/bin/chromium "
    "(apt-get install chromium; `make test-deps` does it)",
)


@contextmanager
def studio_page(workspace: Path, log: Path, env: dict | None = None):
    """The studio on `workspace` (its process given `env` too) in headless Chromium: yields its page, and fails
    the test on any page error."""
    from playwright.sync_api import sync_playwright

    with running_app(workspace, log, env=env) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(url)
            yield page
            assert not errors, errors
        finally:
            browser.close()


def fill_number(page, elem_id: str, value) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Tab")  # gradio takes a number on blur


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    readme_dir = os.environ.get("STUDIO_SCREENSHOTS_DIR")
    if readme_dir:
        from PIL import Image

        image = Image.open(path).convert("RGB")
        image = image.resize((README_WIDTH, round(image.height * README_WIDTH / image.width)), Image.LANCZOS)
        target = Path(readme_dir) / f"{re.sub(r'^[0-9]+-', '', name)}.png"  # "2-train" -> train.png
        target.parent.mkdir(parents=True, exist_ok=True)
        image.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)


def test_sample_data_training_and_comparison_in_a_real_browser(tmp_path):
    from playwright.sync_api import expect

    ws = tmp_path / "ws"
    with studio_page(ws, tmp_path / "app.log") as page:
        # Data: use the built-in sample; its check-data report fills the table, the first clip is previewed.
        page.locator("#data-go").click()
        expect(page.locator("#data-summary")).to_contain_text("48 clips in sample", timeout=60_000)
        expect(page.locator("#data-report")).to_contain_text("train_0000.mp4")
        expect(page.locator("#data-caption textarea")).not_to_have_value("", timeout=30_000)
        expect(page.locator("#data-preview video")).to_have_js_property("videoWidth", 256, timeout=10_000)  # 64 px x 4
        screenshot(page, "1-data")

        # Train: a short run of the form's defaults, made smaller; the curve grows until the run finishes.
        page.get_by_role("tab", name="Train").click()
        name_box = page.locator("#cfg-name input")
        name_box.fill(RUN)
        name_box.press("Tab")
        for elem_id, value in (("cfg-max_steps", STEPS), ("cfg-rank", 4), ("cfg-alpha", 4), ("cfg-num_frames", 9)):
            fill_number(page, elem_id, value)
        page.get_by_text("Advanced", exact=True).click()
        page.locator("#cfg-cache").get_by_text("off", exact=True).click()
        expect(page.locator("#train-problems")).to_contain_text("The config is valid")
        # the memory estimate reads whole in its half-width column: its lines wrap, none runs off the edge
        estimate = page.locator("#train-memory pre")
        expect(estimate).to_contain_text("trainable weights+grads+AdamW")
        assert estimate.evaluate("el => el.scrollWidth <= el.clientWidth + 1"), estimate.inner_text()
        page.locator("#train-start").click()
        headline = page.locator("#train-headline")
        expect(headline).to_contain_text(f"{RUN}", timeout=30_000)
        expect(headline).to_contain_text(f"/{STEPS}", timeout=TRAIN_TIMEOUT_MS)  # the first step is in
        expect(headline).to_contain_text("finished", timeout=TRAIN_TIMEOUT_MS)
        expect(headline).to_contain_text(f"step {STEPS}/{STEPS}")
        # the curve is drawn: its legend shows and its lines have a path (an empty-first plot stayed blank)
        expect(page.locator("#loss-plot")).to_contain_text("smoothed (EMA)", timeout=10_000)
        drawn = page.evaluate(
            "() => Array.from(document.querySelectorAll('#loss-plot svg .mark-line path'))"
            ".filter(p => (p.getAttribute('d') || '').length > 20).length"
        )
        assert drawn >= 2, drawn  # the raw loss and its EMA at least
        page.get_by_text("Advanced", exact=True).click()  # fold it again for the screenshot
        page.wait_for_timeout(1500)
        screenshot(page, "2-train")

        # Generate: the base model and the new adapter, same noise, side by side with the real clip the first
        # frame was picked from (the sample dataset's first clip, picked when the page loads).
        page.get_by_role("tab", name="Generate & compare").click()
        page.locator("#gen-adapters").get_by_text(RUN, exact=True).click()
        fill_number(page, "gen-steps", 4)
        fill_number(page, "gen-num_frames", 9)
        page.locator("#gen-go").click()
        expect(page.locator("#gen-status")).to_contain_text("Done: 2 variants", timeout=GENERATE_TIMEOUT_MS)
        videos = page.locator("#gen-videos video")
        expect(videos).to_have_count(3, timeout=30_000)
        expect(page.locator("#gen-real-clip")).to_contain_text("real clip: ")
        assert videos.nth(2).evaluate("v => getComputedStyle(v).imageRendering") == "pixelated"
        assert videos.nth(2).evaluate("v => v.getBoundingClientRect().height") >= 256  # 64 px shown 4x
        # ... from videos enlarged 4x on the server (square pixels): the browser smoothed the 64 px ones it stretched
        for i in range(3):
            expect(videos.nth(i)).to_have_js_property("videoWidth", 256, timeout=10_000)
        expect(page.locator("#gen-summary")).to_contain_text(RUN)
        page.wait_for_timeout(1500)
        screenshot(page, "3-generate")

        # Adapters: the new adapter with its card.
        page.get_by_role("tab", name="Adapters").click()
        expect(page.locator("#adapters-table")).to_contain_text(RUN, timeout=30_000)
        expect(page.locator("#adapters-card")).to_contain_text("final_loss", timeout=30_000)
        screenshot(page, "4-adapters")

    (out_dir,) = [p for p in (ws / "generations").iterdir() if (p / "compare.json").exists()]
    record = json.loads((out_dir / "compare.json").read_text())
    assert [v["name"] for v in record["variants"]] == ["base", RUN]
    status = json.loads((ws / "runs" / RUN / "status.json").read_text())
    assert (status["state"], status["step"]) == ("finished", STEPS)
    assert (
        len(
            [
                line
                for line in (ws / "runs" / RUN / "metrics.jsonl").read_text().splitlines()
                if '"event": "step"' in line
            ]
        )
        == STEPS
    )


def test_the_caption_editor_follows_the_dataset_when_two_share_a_clip_name(tmp_path):
    """Two datasets with a clip0 each: switching datasets reloads the caption, and Save writes only the clip shown."""
    from conftest import write_clip_dataset
    from playwright.sync_api import expect

    ws = tmp_path / "ws"
    for name, text in (("one", "The first dataset's caption."), ("two", "The second dataset's caption.")):
        write_clip_dataset(ws / "datasets" / name, clips=1)
        (ws / "datasets" / name / "metas" / "clip00.txt").write_text(text + "\n")
    with studio_page(ws, tmp_path / "app.log") as page:
        caption = page.locator("#data-caption textarea")
        for name, text in (("one", "The first dataset's caption."), ("two", "The second dataset's caption.")):
            page.locator("#data-dataset input").click()
            page.get_by_role("option", name=f"datasets/{name}", exact=True).click()
            expect(page.locator("#data-summary")).to_contain_text(f"1 clip in datasets/{name}", timeout=30_000)
            expect(caption).to_have_value(text, timeout=30_000)
        caption.fill("The second dataset's caption, edited.")
        page.get_by_role("button", name="Save caption").click()
        expect(page.get_by_text("Caption of 'clip00' saved")).to_be_visible(timeout=30_000)
    assert (ws / "datasets" / "one" / "metas" / "clip00.txt").read_text() == "The first dataset's caption.\n"
    assert (ws / "datasets" / "two" / "metas" / "clip00.txt").read_text() == "The second dataset's caption, edited.\n"
