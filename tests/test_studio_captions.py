"""The Data tab's captions, studio.caption_controller: proposals from `trainer caption` in a child process,
reviewed clip by clip; the prompt_prefix preview; find-and-replace with a preview. No Gradio, no torch here."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from studio import caption_controller
from studio.access import Access
from studio.caption_controller import CAPTION_MODEL_ENV, PROPOSALS_DIR, CaptionController, CaptionRefused
from studio.dataset_controller import DatasetController
from studio.folders import Workspace
from studio.generation_client import GenerationClient
from tests.conftest import REPO
from tests.datafactory import canonical_dataset
from trainer.caption_files import DEFAULT_VLM, read_captions_record
from trainer.datasets import list_items


@pytest.fixture
def captions(tmp_path, tiny_vlm, monkeypatch) -> CaptionController:
    monkeypatch.setenv(CAPTION_MODEL_ENV, str(tiny_vlm))
    ws = Workspace((tmp_path / "ws").resolve())
    canonical_dataset(ws.datasets / "boxes", {"a": "A red box.", "b": None, "c": None, "d": None})
    return CaptionController(DatasetController(ws))


def test_missing_captions_become_proposals_reviewed_clip_by_clip(captions):
    events = list(captions.write_missing("datasets/boxes"))
    assert [e["event"] for e in events] == ["start", "progress", "progress", "progress", "done"]
    assert (events[0]["clips"], events[0]["skipped"], events[-1]["written"]) == (3, 1, 3)
    root = captions.datasets.path("datasets/boxes")
    assert not (root / "metas" / "b.txt").exists()  # nothing is saved before it is accepted
    proposals = {p.key: p for p in captions.proposals("datasets/boxes")}
    assert sorted(proposals) == ["b", "c", "d"] and all(p.text and p.current == "" for p in proposals.values())

    captions.accept("datasets/boxes", "b")
    captions.accept("datasets/boxes", "c", "The right gripper lifts a cube.")
    captions.reject("datasets/boxes", "d")
    assert captions.proposals("datasets/boxes") == []
    saved = {item.key: item.caption for item in list_items(root)}
    assert saved == {"a": "A red box.", "b": proposals["b"].text, "c": "The right gripper lifts a cube.", "d": None}
    (record,) = read_captions_record(root)
    assert (record["clips"], record["edited"]) == (["b", "c"], ["c"])
    assert record["model"] == str(captions.offer().model) and record["template"] and record["date"]

    # A second run proposes again only the rejected clip (the others have captions now).
    events = list(captions.write_missing("datasets/boxes"))
    assert (events[0]["clips"], [p.key for p in captions.proposals("datasets/boxes")]) == (1, ["d"])


def test_a_caption_the_user_wrote_is_replaced_only_with_a_confirm(captions):
    root = captions.datasets.path("datasets/boxes")
    (root / PROPOSALS_DIR).mkdir()
    (root / PROPOSALS_DIR / "b.txt").write_text("A proposal.\n")  # as `trainer caption --to` writes it
    (root / "metas" / "b.txt").write_text("Mine, written meanwhile.\n")
    with pytest.raises(CaptionRefused, match="'b' has a caption you wrote; tick 'replace captions I wrote'"):
        captions.accept("datasets/boxes", "b")
    assert (root / "metas" / "b.txt").read_text() == "Mine, written meanwhile.\n"
    captions.accept("datasets/boxes", "b", replace_mine=True)
    assert (root / "metas" / "b.txt").read_text() == "A proposal.\n"
    with pytest.raises(CaptionRefused, match="No caption proposal for 'zz'"):
        captions.reject("datasets/boxes", "zz")


def test_cancel_stops_the_child_and_keeps_the_proposals_written(captions):
    events, errors = [], []
    started = threading.Event()

    def run():
        try:
            for event in captions.write_missing("datasets/boxes", owner="me"):
                events.append(event)
                if event["event"] == "start":
                    started.set()
        except CaptionRefused as exc:
            errors.append(str(exc))

    worker = threading.Thread(target=run)
    worker.start()
    assert started.wait(120)
    assert not captions.cancel("someone else") and captions.cancel("me")
    worker.join(60)
    assert errors == ["Captioning was cancelled; the proposals written so far are kept."]
    folder = captions.datasets.path("datasets/boxes") / PROPOSALS_DIR
    assert all(p.read_text().strip() for p in folder.glob("*.txt")) and not list(folder.glob(".*"))


def test_prefix_preview_and_find_and_replace_show_what_changes(captions):
    root = captions.datasets.path("datasets/boxes")
    (root / "metas" / "b.txt").write_text("A blue box slides.\n")
    assert captions.prefix_preview("datasets/boxes", "robot: ")[:2] == [
        ("a", "robot: A red box."),
        ("b", "robot: A blue box slides."),
    ]
    changes, digest = captions.replace_preview("datasets/boxes", "box", "cube")
    assert changes == [("a", "A red box.", "A red cube."), ("b", "A blue box slides.", "A blue cube slides.")]
    (root / "metas" / "a.txt").write_text("A red box, edited.\n")  # changed after the preview
    with pytest.raises(CaptionRefused, match="changed since the preview"):
        captions.replace_apply("datasets/boxes", "box", "cube", digest)
    assert (root / "metas" / "b.txt").read_text() == "A blue box slides.\n"
    changes, digest = captions.replace_preview("datasets/boxes", "box", "cube")
    assert captions.replace_apply("datasets/boxes", "box", "cube", digest) == 2
    assert [i.caption for i in list_items(root)][:2] == ["A red cube, edited.", "A blue cube slides."]
    with pytest.raises(CaptionRefused, match="find: give the text to replace"):
        captions.replace_preview("datasets/boxes", "", "x")


def test_captioning_is_offered_only_with_a_real_model_at_hand(tmp_path, tiny_vlm):
    ws = Workspace((tmp_path / "ws").resolve())
    controller = CaptionController(DatasetController(ws))
    tiny = controller.offer({CAPTION_MODEL_ENV: "tiny"})
    assert tiny.model is None and "names the tiny model. The embedded tiny model cannot caption" in tiny.note
    offline = controller.offer({"HF_HUB_OFFLINE": "1"})
    assert offline.model is None and f"{DEFAULT_VLM} is not in the Hugging Face cache" in offline.note
    assert offline.note.endswith(
        "The embedded tiny model cannot caption: its text encoder has random weights, so its captions would be noise."
    )
    missing = controller.offer({CAPTION_MODEL_ENV: str(tmp_path / "nowhere")})
    assert missing.model is None and "nowhere does not exist" in missing.note and str(tmp_path) not in missing.note
    assert controller.offer({CAPTION_MODEL_ENV: str(tiny_vlm)}).model == str(tiny_vlm)
    # The Train form's model captions when it is a real one this studio may use; for "tiny", the default does.
    assert controller.offer({}, base_model="tiny").model == DEFAULT_VLM
    owner = CaptionController(DatasetController(Workspace((tmp_path / "ws").resolve(), allow_local_folders=True)))
    chosen = owner.offer({}, base_model=str(tiny_vlm))
    assert chosen.model == str(tiny_vlm) and "(the Train form's model)" in chosen.note
    assert controller.offer({}, base_model=str(tiny_vlm)).model == DEFAULT_VLM  # no server folders here
    visitor = CaptionController(DatasetController(Workspace((tmp_path / "ws").resolve(), access=Access(public=True))))
    refused = visitor.offer({})
    assert refused.model is None and "not downloaded here" in refused.note
    with pytest.raises(CaptionRefused, match="Captioning is off"):
        next(visitor.write_missing("datasets/boxes"))


def test_caption_controller_does_not_import_torch_or_gradio():
    code = "import sys, studio.caption_controller; print(sorted({'torch', 'gradio'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# A captioning child that starts, then keeps the GPU until it is stopped.
SLOW_CAPTION = (
    "import json, time; print(json.dumps({'event': 'start', 'clips': 1, 'skipped': 0, 'model': 'm', "
    "'revision': None, 'out_dir': 'd'}), flush=True); time.sleep(60)"
)


def test_captioning_on_the_gpu_holds_off_generations_and_runs_until_it_ends(captions, monkeypatch):
    monkeypatch.setattr(caption_controller.launcher, "trainer_command", lambda *_: [sys.executable, "-c", SLOW_CAPTION])
    generation = GenerationClient(captions.ws, None, gpu=True, argv=lambda: [sys.executable, "-c", "pass"])
    on_gpu = CaptionController(captions.datasets, generation)
    ready = generation.device.free_for_training
    events = on_gpu.write_missing("datasets/boxes", owner="me")
    assert next(events)["event"] == "start"
    assert generation.refusal() == "Captions are being written on the GPU; generate after they finish, or cancel them."
    assert not ready()  # a queued run waits
    assert on_gpu.cancel("me")
    with pytest.raises(CaptionRefused, match="cancelled"):
        list(events)
    assert generation.refusal() is None and ready()
