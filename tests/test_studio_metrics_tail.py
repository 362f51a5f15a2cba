"""The studio's metrics tail (studio.metrics_tail): reading metrics.jsonl as the trainer appends to it, and the
loss curve, learning rate, gradient norm and progress made from its events."""

from __future__ import annotations

import json
import os

import pytest

from studio.metrics_tail import RAW, SMOOTHED, MetricsTail, loss_curve, loss_frame, progress
from trainer.spec.run_folder import METRICS_FILE, RunState, Status


def test_metrics_tail_reads_only_complete_new_lines(tmp_path):
    path = tmp_path / METRICS_FILE
    tail = MetricsTail(path)
    assert tail.poll() == []  # no file yet
    path.write_text('{"event": "step", "step": 1, "loss": 0.9, "time": 10}\n{"event": "step", "st')
    assert [e["step"] for e in tail.poll()] == [1]
    assert tail.poll() == []  # the partial line stays buffered
    with path.open("a") as fh:
        fh.write('ep": 2, "loss": 0.8, "time": 11}\nnot json\n{"event": "step", "step": 3, "loss": 0.7, "time": 12}\n')
    assert [e["step"] for e in tail.poll()] == [2, 3]  # the damaged line is skipped
    assert [e["step"] for e in tail.events] == [1, 2, 3]


def test_metrics_tail_restarts_on_a_truncated_or_replaced_file(tmp_path):
    path = tmp_path / METRICS_FILE
    tail = MetricsTail(path)
    path.write_text("".join(json.dumps({"event": "step", "step": i, "time": i}) + "\n" for i in range(1, 5)))
    assert len(tail.poll()) == 4
    path.write_text(json.dumps({"event": "start", "time": 0}) + "\n")  # truncated: shorter than what was read
    assert [e["event"] for e in tail.poll()] == ["start"] and len(tail.events) == 1
    replacement = tmp_path / "new.jsonl"
    replacement.write_text("".join(json.dumps({"event": "step", "step": i, "time": i}) + "\n" for i in range(9)))
    os.replace(replacement, path)  # replaced by a longer file: a new inode
    assert len(tail.poll()) == 9 and len(tail.events) == 9


def test_loss_frame_and_progress():
    events = [{"event": "start", "time": 0, "total_steps": 10}]
    events += [{"event": "step", "step": s, "loss": 1 / s, "lr": 1e-4, "time": 100 + 2 * s} for s in range(1, 6)]
    events += [{"event": "start", "time": 200, "total_steps": 10, "resumed_from": 3}]
    events += [
        {"event": "step", "step": s, "loss": 0.5, "lr": 2e-4, "grad_norm": 0.25 * s, "time": 200 + 0.5 * s}
        for s in range(4, 7)
    ]
    frame = loss_frame(events)
    assert list(frame.columns) == ["step", "loss", "lr", "grad_norm"]
    assert frame.loc[frame["step"] == 6, "grad_norm"].item() == 1.5
    assert frame.loc[frame["step"] == 2, "grad_norm"].isna().all()  # logged before grad_norm existed: a gap
    assert frame["step"].tolist() == [1, 2, 3, 4, 5, 6]
    assert frame.loc[frame["step"] == 5, "loss"].item() == 0.5  # the resumed attempt's value wins
    assert frame.loc[frame["step"] == 3, "loss"].item() == pytest.approx(1 / 3)  # history up to the checkpoint
    # Started over (no checkpoint): the curve is the new attempt's only.
    over = events + [
        {"event": "start", "time": 300, "total_steps": 10, "resumed_from": 0},
        {"event": "step", "step": 1, "loss": 0.9, "time": 301},
    ]
    assert loss_frame(over)[["step", "loss"]].values.tolist() == [[1, 0.9]]
    p = progress(events, Status(RunState.RUNNING, step=6, total=10))
    assert p["step"] == 6 and p["total"] == 10 and p["last_loss"] == 0.5
    assert p["steps_per_second"] == pytest.approx(2.0)  # measured on the current attempt only
    assert p["eta_seconds"] == pytest.approx(2.0)
    assert progress([], None) == {
        "step": 0,
        "total": 0,
        "steps_per_second": None,
        "eta_seconds": None,
        "last_loss": None,
    }


def test_loss_curve_is_the_raw_loss_and_its_debiased_moving_average():
    frame = loss_frame(
        [{"event": "step", "step": s, "loss": float(s % 2), "lr": 1e-4, "time": s} for s in range(1, 41)]
    )
    curve = loss_curve(frame)
    raw, smoothed = (curve[curve["series"] == name] for name in (RAW, SMOOTHED))
    assert raw["loss"].tolist() == frame["loss"].tolist() and raw["step"].tolist() == smoothed["step"].tolist()
    assert smoothed["loss"].iloc[0] == 1.0  # debiased: the first point is the first loss, not a tenth of it
    expected, weights = 0.0, 0.0  # the definition, step by step
    for loss in frame["loss"]:
        expected, weights = 0.9 * expected + loss, 0.9 * weights + 1
    assert smoothed["loss"].iloc[-1] == pytest.approx(expected / weights)
    assert smoothed["loss"].std() < 0.3 * raw["loss"].std()  # the alternating 0/1 loss is smoothed out
