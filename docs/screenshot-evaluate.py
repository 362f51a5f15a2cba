"""The README's Evaluate screenshot (docs/screenshots/evaluate.png), taken on a real run: the CPU preset's.

Usage: python docs/screenshot-evaluate.py RUN_DIR [WORKSPACE]   (docs/make-pictures.sh passes the run it trained)

It copies RUN_DIR into a fresh studio workspace, starts the studio (headless Chromium, driven by Playwright, with
the browser tests' helpers), picks the run in Generate & compare, ticks "every checkpoint of the picked runs" and
scores every held-out clip with the tab's settings (the `tiny` preset: the same as `trainer evaluate`'s defaults),
then shoots the page once the best checkpoint is named.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO)]

from test_browser import fill_number, screenshot, studio_page  # noqa: E402

HELD_OUT_CLIPS = 12  # the whole sample:held_out split, as docs/tiny-world.md scores it
EVALUATE_TIMEOUT_MS = 900_000


def main(run_dir: Path, workspace: Path) -> None:
    from playwright.sync_api import expect

    if (workspace / "runs").exists():
        raise SystemExit(f"{workspace} already holds runs/; give a new or empty folder.")
    shutil.copytree(run_dir, workspace / "runs" / run_dir.name)
    os.environ["STUDIO_SCREENSHOTS_DIR"] = str(REPO / "docs" / "screenshots")
    with studio_page(workspace, workspace / "app.log") as page:
        page.get_by_role("tab", name="Generate & compare").click()
        page.locator("#gen-adapters").get_by_text(run_dir.name, exact=True).click()
        fill_number(page, "eval-clips", HELD_OUT_CLIPS)
        page.locator("#eval-checkpoints input").check()
        page.locator("#eval-go").click()
        status = page.locator("#eval-status")
        expect(status).to_contain_text("Best checkpoint:", timeout=EVALUATE_TIMEOUT_MS)
        expect(page.locator("#eval-curve")).to_be_visible()
        page.wait_for_timeout(2000)  # the videos and the curve settle
        screenshot(page, "evaluate")
        print(status.inner_text())
    print(f"wrote {REPO / 'docs' / 'screenshots' / 'evaluate.png'}")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        raise SystemExit(__doc__)
    run = Path(sys.argv[1]).resolve()
    if not (run / "config.json").is_file():
        raise SystemExit(f"{run} is not a run folder (no config.json); give the run the preset trained.")
    main(run, Path(sys.argv[2]) if len(sys.argv) == 3 else Path(tempfile.mkdtemp()) / "ws")
