"""Synchronised playback of the compared videos in a real browser: one play/pause, scrub bar and frame stepper
drive every variant video together, frame-locked (headless Chromium driven by playwright, like test_browser.py)."""

from __future__ import annotations

import pytest
from adapterfactory import make_adapter
from test_browser import ARTIFACTS, CHROMIUM, GENERATE_TIMEOUT_MS, fill_number, studio_page

FPS, FRAMES = 8, 9  # 9 frames at 8 fps: a 1.1 s clip, the smallest the tiny model renders
# The base, the adapter and the real clip the default first frame was picked from (its own column, same length).
VIDEOS = 3
BAR = "#gen-playback"
TIMES = "() => Array.from(document.querySelectorAll('#gen-videos video'), v => v.currentTime)"
STATE = f"() => document.querySelector('{BAR} [data-state]').dataset.state"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed at /usr/bin/chromium "
    "(apt-get install chromium; `make test-deps` does it)",
)


def frame_of(time: float) -> int:
    return int(time * FPS + 1e-6)


def assert_locked(times: list[float], frame: int | None = None) -> None:
    """Every video on one frame: currentTime within one frame of each other (and on `frame` if given)."""
    assert len(times) == VIDEOS, times
    assert max(times) - min(times) < 1 / FPS, times
    if frame is not None:
        assert {frame_of(t) for t in times} == {frame}, times


def generate_two_variants(page, adapter: str) -> None:
    page.get_by_role("tab", name="Generate & compare").click()
    page.locator("#gen-adapters").get_by_text(adapter, exact=True).click()
    for elem_id, value in (("gen-steps", 2), ("gen-num_frames", FRAMES), ("gen-fps", FPS)):
        fill_number(page, elem_id, value)
    page.locator("#gen-go").click()


def test_one_bar_plays_pauses_scrubs_and_steps_every_variant_together(tmp_path):
    from playwright.sync_api import expect

    ws = tmp_path / "ws"
    make_adapter(ws / "adapters" / "pick")
    with studio_page(ws, tmp_path / "app.log") as page:
        generate_two_variants(page, "pick")
        expect(page.locator("#gen-status")).to_contain_text("Done: 2 variants", timeout=GENERATE_TIMEOUT_MS)
        expect(page.locator("#gen-videos video")).to_have_count(VIDEOS, timeout=30_000)
        bar = page.locator(BAR)
        toggle, counter = bar.locator("[data-action=toggle]"), bar.locator("[data-role=counter]")
        # The bar takes the videos over once both are loaded and plays them together from the first frame.
        page.wait_for_function(f"() => document.querySelector('{BAR} [data-ready]')", timeout=30_000)

        # Pause, play (both advance), pause: both stop on the same frame, past the start.
        if page.evaluate(STATE) == "playing":
            toggle.click()
        expect(toggle).to_have_text("Play")
        assert_locked(page.evaluate(TIMES))
        toggle.click()
        expect(toggle).to_have_text("Pause")
        page.wait_for_function(f"() => ({TIMES})().every(t => t > 2 / {FPS})", timeout=10_000)
        for _ in range(10):  # while playing too (measured: within 1 ms of each other)
            assert_locked(page.evaluate(TIMES))
        toggle.click()
        expect(toggle).to_have_text("Play")
        times = page.evaluate(TIMES)
        assert_locked(times)
        assert min(times) > 0
        expect(counter).to_have_text(f"frame {frame_of(times[0]) + 1} / {FRAMES}")

        # Scrub to the middle: both show the middle frame; step one frame on: both follow.
        middle = FRAMES // 2
        bar.locator("[data-role=scrub]").fill(str(middle))
        page.wait_for_function(f"() => ({TIMES})().every(t => Math.floor(t * {FPS} + 1e-6) === {middle})")
        assert_locked(page.evaluate(TIMES), middle)
        expect(counter).to_have_text(f"frame {middle + 1} / {FRAMES}")
        bar.locator("[data-action=next]").click()
        assert_locked(page.evaluate(TIMES), middle + 1)
        expect(counter).to_have_text(f"frame {middle + 2} / {FRAMES}")

        # A video's own play plays both; its own pause pauses both, on one frame.
        page.evaluate("() => document.querySelectorAll('#gen-videos video')[1].play()")
        expect(toggle).to_have_text("Pause")
        page.wait_for_function(f"() => ({TIMES})().every(t => t > {middle + 2.5} / {FPS})", timeout=10_000)
        page.evaluate("() => document.querySelectorAll('#gen-videos video')[1].pause()")
        expect(toggle).to_have_text("Play")
        assert_locked(page.evaluate(TIMES))

        # Without loop, playing to the end stops both on the last frame.
        bar.locator("[data-role=loop]").uncheck()
        toggle.click()
        expect(toggle).to_have_text("Play", timeout=10_000)
        assert_locked(page.evaluate(TIMES), FRAMES - 1)
        assert (
            page.evaluate("() => Array.from(document.querySelectorAll('#gen-videos video'), v => v.paused)")
            == [True] * VIDEOS
        )
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "playback.png"), full_page=True)
