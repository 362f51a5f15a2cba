"""Text the page must not cut off, in a real browser: every line of the loss curve's legend is inside its block;
the Generate tab's longest size label is shown whole.

The run is a finished run folder written on disk (no training): steps with a loss, a checkpoint and a sample
event, so the loss curve's legend has its four entries (loss, smoothed (EMA), checkpoints, samples).
"""

from __future__ import annotations

import json

import test_browser
from test_browser import screenshot, studio_page

from trainer.spec.run_folder import CONFIG_FILE, METRICS_FILE, STATUS_FILE

pytestmark = test_browser.pytestmark  # skipped, with the reason, where Debian's chromium is missing

RUN = "plotted"
LONGEST_SIZE = "704x1280, 93 frames (model default)"


def write_finished_run(runs) -> None:
    run = runs / RUN
    run.mkdir(parents=True)
    config = {"data": "sample", "name": RUN, "output_dir": str(runs), "max_steps": 20, "num_frames": 9}
    (run / CONFIG_FILE).write_text(json.dumps(config))
    (run / STATUS_FILE).write_text(json.dumps({"state": "finished", "step": 20, "total": 20, "pid": None}))
    events = [{"event": "start", "time": 1, "total_steps": 20, "resumed_from": 0}]
    events += [
        {"event": "step", "step": s, "loss": 0.3 - 0.01 * s, "lr": 1e-4, "grad_norm": 0.1, "time": 1 + s}
        for s in range(1, 21)
    ]
    events += [
        {"event": "checkpoint", "step": 10, "path": str(run / "checkpoints" / "step-10"), "time": 12},
        {"event": "sample", "step": 0, "path": str(run / "samples" / "step-0"), "videos": [], "time": 2},
    ]
    (run / METRICS_FILE).write_text("".join(json.dumps(e) + "\n" for e in events))


def test_the_loss_legend_and_the_size_label_are_not_cut_off(tmp_path):
    from playwright.sync_api import expect

    ws = tmp_path / "ws"
    write_finished_run(ws / "runs")
    with studio_page(ws, tmp_path / "app.log") as page:
        page.get_by_role("tab", name="Train").click()
        expect(page.locator("#train-headline")).to_contain_text(f"{RUN} · finished", timeout=30_000)
        expect(page.locator("#loss-plot")).to_contain_text("smoothed (EMA)", timeout=30_000)
        page.wait_for_timeout(1000)  # the plot settles to its container's size
        boxes = page.evaluate(
            """() => {
                const block = document.querySelector('#loss-plot').getBoundingClientRect();
                const labels = Array.from(document.querySelectorAll('#loss-plot .role-legend text'));
                return {bottom: block.bottom, labels: labels.map(t => [t.textContent, t.getBoundingClientRect().bottom])};
            }"""
        )
        screenshot(page, "plots-legend")

        page.get_by_role("tab", name="Generate & compare").click()
        size = page.get_by_label("size and frames")
        size.click()
        page.get_by_role("option", name=LONGEST_SIZE).click()
        expect(size).to_have_value(LONGEST_SIZE)
        widths = size.evaluate("e => [e.scrollWidth, e.clientWidth]")
    names = [name for name, _ in boxes["labels"]]
    assert {"loss", "smoothed (EMA)", "checkpoints", "samples"} <= set(names), names
    cut = [name for name, bottom in boxes["labels"] if bottom > boxes["bottom"]]
    assert not cut, f"legend lines below the plot's block ({boxes['bottom']:.0f} px): {cut}"
    assert widths[0] <= widths[1], f"{LONGEST_SIZE!r} needs {widths[0]} px, its box shows {widths[1]}"
