"""One job on the GPU at a time across the studio's features: while an evaluation's child runs on the GPU, no
generation loads a second model, no queued run starts and a resumed run queues; once it ends, the queue moves on."""

from __future__ import annotations

import sys

import pytest
from settingsfactory import QUICK_SETTINGS as SETTINGS
from test_studio_controllers import cfg, fake, manager  # noqa: F401 (fixtures)

from studio import evaluation as evaluation_module
from studio.adapter_registry import AdapterRegistry
from studio.evaluation import EvaluationError, Evaluator
from studio.generation_client import GenerationClient
from studio.run_queue import RunQueue
from trainer.spec.run_folder import RunState, read_status

# An evaluation child that reports one step, then keeps the GPU until it is killed.
SLOW_EVALUATE = """
import json, sys, time
print(json.dumps({"event": "progress", "variant": "base", "clip": 1, "clips": 1, "key": "k", "step": 1,
                  "steps": 2}), flush=True)
time.sleep(60)
"""


@pytest.fixture
def gpu_studio(manager, tmp_path, monkeypatch):
    script = tmp_path / "slow_evaluate.py"
    script.write_text(SLOW_EVALUATE)
    monkeypatch.setattr(evaluation_module.launcher, "trainer_command", lambda *_: [sys.executable, str(script)])
    generation = GenerationClient(manager.ws, manager, gpu=True, argv=lambda: [sys.executable, "-c", "pass"])
    evaluator = Evaluator(AdapterRegistry(manager.ws), generation)
    return generation, evaluator, RunQueue(manager, generation.device)


def test_an_evaluation_on_the_gpu_holds_off_generations_queued_runs_and_resume(manager, gpu_studio):
    generation, evaluator, queue = gpu_studio
    manager.start(cfg("old"))
    assert manager.wait(10) and read_status(manager.runs_dir / "old").state is RunState.FINISHED
    (manager.runs_dir / "old" / "status.json").write_text(
        (manager.runs_dir / "old" / "status.json").read_text().replace('"finished"', '"stopped"')
    )

    events = evaluator.evaluate(SETTINGS, [], {}, "datasets/held", 1, owner="me")
    assert next(events)["event"] == "progress"  # the child runs: the GPU is the evaluation's
    assert generation.refusal() == "An evaluation is running on the GPU; generate after it finishes, or cancel it."
    assert queue.submit(cfg("a")).position == 1  # nothing trains, yet the run waits
    assert queue.pump() is None and read_status(manager.runs_dir / "a").state is RunState.QUEUED
    assert queue.resume("old", start_over=True).position == 2  # Resume (here: start over) queues like Start
    assert read_status(manager.runs_dir / "old").state is RunState.QUEUED

    assert evaluator.cancel("me")
    with pytest.raises(EvaluationError, match="cancelled"):
        list(events)
    assert generation.refusal() is None
    assert queue.pump() == "a"  # the GPU is free again: the queue moves on
    assert manager.wait(10) and read_status(manager.runs_dir / "a").state is RunState.FINISHED
    assert queue.pump() == "old" and manager.wait(10)
    assert read_status(manager.runs_dir / "old").state is RunState.FINISHED


def test_closing_the_studio_stops_a_running_evaluation(manager, gpu_studio):
    from studio.workspace import Studio

    generation, evaluator, queue = gpu_studio
    studio = Studio(manager.ws, manager, None, None, evaluator.registry, generation, queue=queue, evaluation=evaluator)
    events = evaluator.evaluate(SETTINGS, [], {}, "datasets/held", 1, owner="me")
    assert next(events)["event"] == "progress"
    child = evaluator._running[1]
    studio.close()
    assert child.wait(10) is not None  # killed, not left running on the GPU
    with pytest.raises(EvaluationError):
        list(events)
