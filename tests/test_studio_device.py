"""The studio's one owner of the device: training runs, generations and evaluations contending for one GPU are
served one at a time, in the order of the line whose places they were told; on the CPU they share the cores."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from studio.device import Cancelled, Device, DeviceBusy


def test_training_generation_and_evaluation_take_turns_on_one_gpu():
    jobs = SimpleNamespace(current=lambda: None)
    device, freed, stopped = Device(jobs, gpu=True), [], []
    device.leaves_idle["generation"] = lambda: freed.append("worker")

    assert list(device.wait_turn("generation", "a")) == []  # a free GPU: no wait, no place in line
    b, c = device.wait_turn("generation", "b"), device.wait_turn("generation", "c")
    assert (next(b), next(c)) == (1, 2)  # their true places: the users served before them
    assert (device.position("b"), device.position("c"), device.position("a")) == (1, 2, None)
    with pytest.raises(DeviceBusy, match=r"^A generation is running on the GPU; evaluate after it finishes\.$"):
        device.take_now("evaluation", "e")  # an evaluation does not jump the line
    assert device.hand_over(lambda: "run") is None and not device.free_for_training()  # nor does a run

    assert device.cancel("c", "generation") and not device.cancel("c", "evaluation")
    with pytest.raises(Cancelled):
        next(c)
    device.give_back("a")
    assert list(b) == [] and device.holds("generation")  # served in the order it was told
    device.give_back("b")

    device.take_now("evaluation", "e", stop=lambda: stopped.append("e"))
    assert freed == ["worker"]  # the idle worker's model left the GPU before the evaluation's child loads
    assert (
        device.refusal("generation") == "An evaluation is running on the GPU; generate after it finishes, or cancel it."
    )
    with pytest.raises(DeviceBusy, match="^An evaluation is running on the GPU; generate"):
        next(device.wait_turn("generation", "d"))
    assert device.cancel("e", "evaluation") and stopped == ["e"] and device.cancelled("e")
    device.give_back("e")

    run = SimpleNamespace(name="run-1")

    def start():
        jobs.current = lambda: run
        return run

    assert device.free_for_training() and device.hand_over(start) is run and freed == ["worker", "worker"]
    assert device.refusal("generation") == (
        "Run 'run-1' is training on the GPU; generate after it finishes, or stop it first."
    )
    with pytest.raises(DeviceBusy, match="^Run 'run-1' is training on the GPU; evaluate after it finishes"):
        device.take_now("evaluation", "f")
    with pytest.raises(DeviceBusy, match="^Run 'run-1' is training on the GPU; generate"):
        next(device.wait_turn("generation", "g"))
    assert device.position("g") is None  # refused, it left the line


def test_a_waiting_generation_is_refused_when_a_run_took_the_gpu_at_its_turn():
    jobs = SimpleNamespace(current=lambda: None)
    device = Device(jobs, gpu=True)
    device.take_now("generation", "a")
    waiting = device.wait_turn("generation", "b")
    assert next(waiting) == 1
    jobs.current = lambda: SimpleNamespace(name="queued-run")  # a command-line run started meanwhile
    device.give_back("a")
    with pytest.raises(DeviceBusy, match="^Run 'queued-run' is training on the GPU"):
        next(waiting)
    assert not device.holds("generation") and device.free_for_training()


def test_on_the_cpu_they_share_the_cores_and_only_the_same_kind_waits():
    device = Device(SimpleNamespace(current=lambda: SimpleNamespace(name="run-1")), gpu=False)
    assert device.refusal("generation") is None and device.free_for_training()  # training blocks nobody
    assert list(device.wait_turn("generation", "a")) == []
    device.take_now("evaluation", "e")  # beside a generation and a run
    device.take_now("captioning", "c")
    assert next(device.wait_turn("generation", "b")) == 1  # one worker renders one request at a time
    with pytest.raises(DeviceBusy, match=r"^An evaluation is already running; wait for it to finish or cancel it\.$"):
        device.take_now("evaluation", "f")
    assert device.hand_over(lambda: "started") == "started"
