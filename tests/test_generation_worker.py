"""The generation worker (`python -m trainer.worker`) and its Gradio-free client, studio.generation.

The round trip runs the real worker on the tiny pipeline; the protocol edge cases (stale answers, a dying
worker, a GPU held by training) use small fake workers so they cost no model load.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from studio.generation_client import GenerationBusy, GenerationClient, GenerationError

STEPS = 2
REQUEST_TIMEOUT_S = 240  # the first request starts Python with torch and loads the pipeline (~10 s here)


@pytest.fixture(scope="module")
def adapter_dir(tmp_path_factory) -> Path:
    """A rank-4 LoRA on the tiny transformer with random (non-zero) weights, saved as the trainer saves it."""
    import torch

    from trainer.adapters import attach, make_card, save_adapter, trainable_parameters
    from trainer.cosmos import load_pipeline, model_identity
    from trainer.spec.config import TrainConfig

    cfg = TrainConfig(data="sample", name="pick", rank=4, alpha=4.0)
    pipe = load_pipeline("tiny")
    config = attach(pipe.transformer, cfg)
    torch.manual_seed(0)
    for param in trainable_parameters(pipe.transformer):
        param.data.normal_(0.0, 0.2)
    out = tmp_path_factory.mktemp("ws") / "runs" / "pick" / "adapter"
    card = make_card(cfg, model_identity("tiny", None), {"clips": 1, "digest": "x"}, steps=3, final_loss=0.5)
    return save_adapter(out, pipe.transformer, config, card)


@pytest.fixture(scope="module")
def first_frame(tmp_path_factory) -> Path:
    from PIL import Image

    path = tmp_path_factory.mktemp("frame") / "first.png"
    pixels = np.zeros((64, 64, 3), np.uint8)
    pixels[20:40, 10:30] = (220, 40, 40)
    Image.fromarray(pixels).save(path)
    return path


def request(first_frame: Path, adapters: list[dict], **extra) -> dict:
    return {
        "model": "tiny",
        "guardrail": False,
        "prompt": "A red box slides down.",
        "image": str(first_frame),
        "adapters": adapters,
        "seed": 3,
        "steps": STEPS,
        "height": 64,
        "width": 64,
        "num_frames": 9,
        "fps": 8,
        **extra,
    }


def test_worker_round_trip_two_variants_with_progress_then_reuses_and_survives_errors(
    tmp_path, adapter_dir, first_frame
):
    client = GenerationClient(tmp_path / "ws", gpu=False)
    try:
        events = list(
            client.generate(request(first_frame, [{"path": str(adapter_dir), "scale": 1.0}]), timeout=REQUEST_TIMEOUT_S)
        )
        kinds = [e["event"] for e in events]
        assert kinds[0] == "starting" and kinds[-1] == "done"
        progress = [(e["variant"], e["step"], e["total"]) for e in events if e["event"] == "progress"]
        assert progress == [("base", s, STEPS) for s in range(1, STEPS + 1)] + [
            ("pick", s, STEPS) for s in range(1, STEPS + 1)
        ]
        done = events[-1]
        out = Path(done["out_dir"])
        assert out.parent == client.out_root
        record = json.loads((out / "compare.json").read_text())
        assert record == done["record"]
        assert [v["name"] for v in record["variants"]] == ["base", "pick"]
        assert record["variants"][1]["card"]["rank"] == 4 and record["variants"][1]["scale"] == 1.0
        for name in ("base.mp4", "pick.mp4", "compare.mp4"):
            assert (out / name).stat().st_size > 0
        from trainer.video import read_frames

        base, pick = read_frames(out / "base.mp4"), read_frames(out / "pick.mp4")
        assert base.shape == pick.shape == (9, 64, 64, 3)
        assert np.abs(base.astype(int) - pick).max() > 0  # same noise, and the adapter changes the result
        assert read_frames(out / "compare.mp4").shape[2] == 128  # both variants side by side
        pid = client._worker.process.pid

        # A bad request is answered with one sentence; the same worker (model still loaded) serves the next.
        with pytest.raises(GenerationError, match=r"num_frames: must be 4k\+1"):
            list(client.generate(request(first_frame, [], num_frames=10), timeout=60))
        # Over the bounds (trainer.spec.bounds), refused by the worker itself, whoever sent the request.
        with pytest.raises(
            GenerationError,
            match=r"steps: must be between 1 and 200 \(got 100000\); "
            r"height: 4096x4096x9 frames is 196608 tokens, above the \d+",
        ):
            list(client.generate(request(first_frame, [], steps=100000, height=4096, width=4096), timeout=60))
        again = list(client.generate(request(first_frame, [], seed=4), timeout=60))
        assert again[0]["event"] == "progress" and again[-1]["event"] == "done"  # no "starting": reused
        assert len(again[-1]["record"]["variants"]) == 1 and client._worker.process.pid == pid

        # A worker that died is replaced by the next request.
        client._worker.process.kill()
        client._worker.process.wait(10)
        restarted = list(client.generate(request(first_frame, [], steps=1), timeout=REQUEST_TIMEOUT_S))
        assert restarted[0]["event"] == "starting" and restarted[-1]["event"] == "done"
        assert client._worker.process.pid != pid
    finally:
        client.close()
    assert client._worker is None


FAKE_WORKER = r"""
import json, sys
mode = sys.argv[1]
for line in sys.stdin:
    req = json.loads(line)
    print("some library printed this", flush=True)
    print(json.dumps({"id": "stale", "event": "done", "record": {}}), flush=True)
    if mode == "die":
        print("Traceback: boom", file=sys.stderr, flush=True)
        sys.exit(3)
    if mode == "hang":
        import time; time.sleep(60)
    print(json.dumps({"id": req["id"], "event": "progress", "variant": "base", "step": 1, "total": 1}), flush=True)
    print(json.dumps({"id": req["id"], "event": "done", "record": {"variants": []}, "out_dir": req["out_dir"]}),
          flush=True)
"""


def fake_client(tmp_path: Path, mode: str, **kw) -> GenerationClient:
    script = tmp_path / "fake_worker.py"
    script.write_text(FAKE_WORKER)
    return GenerationClient(tmp_path / "ws", argv=lambda: [sys.executable, str(script), mode], **kw)


def test_client_skips_foreign_lines_and_answers_to_other_requests(tmp_path):
    client = fake_client(tmp_path, "ok", gpu=False)
    try:
        events = list(client.generate({"prompt": "x"}, timeout=30))
        assert [e["event"] for e in events] == ["starting", "progress", "done"]
        assert Path(events[-1]["out_dir"]).is_dir()
    finally:
        client.close()


def test_client_reports_a_dying_worker_with_its_log_and_restarts_it(tmp_path):
    client = fake_client(tmp_path, "die", gpu=False)
    with pytest.raises(GenerationError, match=r"exited \(code 3\): Traceback: boom; it restarts on the next"):
        list(client.generate({"prompt": "x"}, timeout=30))
    assert client._worker is None
    with pytest.raises(GenerationError, match=r"exited \(code 3\)"):
        list(client.generate({"prompt": "x"}, timeout=30))  # a fresh worker was started (and died again)


def test_client_stops_a_silent_worker_after_the_timeout(tmp_path):
    client = fake_client(tmp_path, "hang", gpu=False)
    t0 = time.monotonic()
    with pytest.raises(
        GenerationError,
        match="^The generation took longer than its limit of 2 s and was stopped; "
        "try again with fewer steps or frames.$",
    ):
        list(client.generate({"prompt": "x"}, timeout=2))
    assert time.monotonic() - t0 < 15 and client._worker is None


def test_a_queued_request_says_its_place_and_its_sender_can_cancel_it(tmp_path):
    import threading

    client = fake_client(tmp_path, "hang", gpu=False)
    first = client.generate({"prompt": "x"}, owner="alice")
    assert next(first)["event"] == "starting"  # alice's request holds the worker (it hangs)
    second = client.generate({"prompt": "y"}, owner="bob")
    assert next(second) == {"event": "queued", "position": 1}
    assert not client.cancel("carol")  # nobody else's request can be cancelled
    assert client.cancel("bob")
    with pytest.raises(GenerationError, match="^The generation was cancelled before it started.$"):
        next(second)
    failure = []
    threading.Thread(target=lambda: failure.append(pytest.raises(GenerationError, list, first)), daemon=True).start()
    time.sleep(0.5)
    assert client.cancel("alice")
    deadline = time.monotonic() + 10
    while not failure and time.monotonic() < deadline:
        time.sleep(0.05)
    assert str(failure[0].value) == "The generation was cancelled; the worker restarts on the next request."
    assert not client.busy


def test_generation_is_refused_while_training_holds_the_gpu(tmp_path):
    job = SimpleNamespace(name="tiny-lora")
    jobs = SimpleNamespace(current=lambda: job)
    client = fake_client(tmp_path, "ok", gpu=True, jobs=jobs)
    with pytest.raises(GenerationBusy, match=r"^Run 'tiny-lora' is training on the GPU; generate after it finishes"):
        list(client.generate({"prompt": "x"}))
    assert client._worker is None  # nothing was started
    jobs.current = lambda: None
    assert [e["event"] for e in client.generate({"prompt": "x"}, timeout=30)][-1] == "done"
    client.close()
    on_cpu = fake_client(tmp_path, "ok", gpu=False, jobs=SimpleNamespace(current=lambda: SimpleNamespace(name="a")))
    assert on_cpu.refusal() is None  # on the CPU, generation shares the cores with training


def test_a_generation_waiting_its_turn_is_refused_when_a_run_took_the_gpu_meanwhile(tmp_path):
    jobs = SimpleNamespace(current=lambda: None)
    client = fake_client(tmp_path, "ok", gpu=True, jobs=jobs)
    client.device.take_now("generation", "other")  # another generation renders
    waiting = client.generate({"prompt": "x"}, timeout=30)
    assert next(waiting) == {"event": "queued", "position": 1}
    jobs.current = lambda: SimpleNamespace(name="queued-run")  # it ends; the run queue starts the next run
    client.device.give_back("other")
    with pytest.raises(GenerationBusy, match=r"^Run 'queued-run' is training on the GPU"):
        list(waiting)
    assert client._worker is None and not client.busy  # no second model on the GPU, the slot is free again


def test_queued_requests_are_served_in_the_order_their_places_said(tmp_path):
    import threading

    client = fake_client(tmp_path, "ok", gpu=False)
    client.device.take_now("generation", "other")  # another generation renders
    first, second = (client.generate({"prompt": o}, owner=o, timeout=30) for o in ("first", "second"))
    assert next(first) == {"event": "queued", "position": 1}
    assert next(second) == {"event": "queued", "position": 2}
    client.device.give_back("other")  # it ends; the second request happens to ask first
    asked = []
    threading.Thread(target=lambda: asked.append(next(second)), daemon=True).start()
    time.sleep(1.0)
    assert asked in ([], [{"event": "queued", "position": 1}])  # it waits for the one ahead of it, as told
    assert [e["event"] for e in first] == ["starting", "progress", "done"]
    deadline = time.monotonic() + 10
    while not asked and time.monotonic() < deadline:
        time.sleep(0.05)
    assert asked[0] in ({"event": "queued", "position": 1}, {**asked[0], "event": "progress"})  # then its turn
    assert [e["event"] for e in second][-1] == "done"
    client.close()
    # A request the worker refuses leaves no folder; the two served ones keep theirs.
    with pytest.raises(GenerationError):
        list(fake_client(tmp_path, "die", gpu=False).generate({"prompt": "x"}, timeout=30))
    assert len([p for p in (tmp_path / "ws" / "generations").iterdir() if p.is_dir()]) == 2
