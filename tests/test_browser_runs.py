"""Runs to build on, in a real browser: a second Start queues its run, which starts when the first ends; a past
run cloned into the form; the form saved as a preset; after a reload the form shows the run the page shows.

Two short real runs (the tiny model on the sample data, 3 and 2 steps), one after the other.
"""

from __future__ import annotations

import json

import test_browser
from test_browser import TRAIN_TIMEOUT_MS, fill_number, screenshot, studio_page

pytestmark = test_browser.pytestmark  # skipped, with the reason, where Debian's chromium is missing

FIRST, SECOND = "first", "second"


def set_name(page, name: str) -> None:
    box = page.locator("#cfg-name input")
    box.fill(name)
    box.press("Tab")


def pick_run(page, name: str) -> None:
    page.locator("#train-run input").click()
    page.get_by_role("option", name=name, exact=True).click()


def test_queue_clone_preset_and_reload_in_a_real_browser(tmp_path):
    from playwright.sync_api import expect

    ws = tmp_path / "ws"
    with studio_page(ws, tmp_path / "app.log") as page:
        page.get_by_role("tab", name="Train").click()
        headline = page.locator("#train-headline")

        # Two Starts in a row: the first trains, the second waits in the queue.
        set_name(page, FIRST)
        page.get_by_text("Advanced", exact=True).click()
        for elem_id, value in (
            ("cfg-max_steps", 3),
            ("cfg-rank", 4),
            ("cfg-alpha", 4),
            ("cfg-num_frames", 9),
            ("cfg-checkpoint_every", 0),
        ):
            fill_number(page, elem_id, value)
        page.locator("#cfg-cache").get_by_text("off", exact=True).click()
        expect(page.locator("#train-problems")).to_contain_text("The config is valid")
        page.locator("#train-start").click()
        expect(headline).to_contain_text(FIRST, timeout=30_000)
        set_name(page, SECOND)
        fill_number(page, "cfg-max_steps", 2)
        page.locator("#train-start").click()
        expect(headline).to_contain_text(f"{SECOND} · queued · position 1 of 1 in the queue", timeout=30_000)
        screenshot(page, "runs-1-queued")

        # The queue starts the second run when the first has finished; the page follows it.
        expect(headline).to_contain_text(f"{SECOND} · training", timeout=TRAIN_TIMEOUT_MS)
        expect(headline).to_contain_text("finished", timeout=TRAIN_TIMEOUT_MS)
        expect(headline).to_contain_text("step 2/2")

        # Clone the first run: the form holds its config under a new name.
        pick_run(page, FIRST)
        expect(headline).to_contain_text(f"{FIRST} · finished · step 3/3", timeout=30_000)
        page.locator("#train-clone").click()
        expect(page.locator("#cfg-name input")).to_have_value(f"{FIRST}-2", timeout=30_000)
        expect(page.locator("#cfg-max_steps input[type=number]")).to_have_value("3")
        expect(page.locator("#cfg-rank input[type=number]")).to_have_value("4")

        # Save the form as a preset: it joins the preset list.
        page.locator("#train-preset-name input").fill("three-steps")
        page.locator("#train-preset-save").click()
        expect(page.locator("#train-preset input")).to_have_value("three-steps", timeout=30_000)

        # A reload: the form shows the config of the run the page shows (the latest, the second).
        page.reload()
        page.get_by_role("tab", name="Train").click()
        expect(page.locator("#train-headline")).to_contain_text(f"{SECOND} · finished", timeout=30_000)
        expect(page.locator("#cfg-name input")).to_have_value(f"{SECOND}-2", timeout=30_000)
        expect(page.locator("#cfg-max_steps input[type=number]")).to_have_value("2")
        screenshot(page, "runs-2-reloaded")

    runs = ws / "runs"
    statuses = {name: json.loads((runs / name / "status.json").read_text()) for name in (FIRST, SECOND)}
    assert [(s["state"], s["step"]) for s in statuses.values()] == [("finished", 3), ("finished", 2)]
    assert statuses[SECOND]["updated"] > statuses[FIRST]["updated"]  # one after the other
    first_metrics = (runs / FIRST / "metrics.jsonl").read_text().splitlines()
    second_start = json.loads((runs / SECOND / "metrics.jsonl").read_text().splitlines()[0])
    assert second_start["event"] == "start" and second_start["time"] >= json.loads(first_metrics[-1])["time"]
    assert not (runs / f"{FIRST}-2").exists()  # a clone is only a filled form until Start
    preset = json.loads((ws / "presets" / "three-steps.json").read_text())
    assert (preset["name"], preset["max_steps"], preset["rank"]) == (f"{FIRST}-2", 3, 4)
