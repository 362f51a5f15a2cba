"""The studio as an anonymous visitor sees it on a public Space: every endpoint called directly with gradio_client.

Each probe for a path outside the workspace (absolute, `../`, a clip key that climbs out, a symlinked folder,
the cache holding the built-in sample) is refused with a message that names no server path, and the files
outside stay byte-identical. Bounds, upload size, the read-only mode and sign-in are checked the same way.
One app process serves all the probes of a kind (module-scoped fixtures), so the suite stays quick.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from conftest import write_clip_dataset
from test_studio_app import running_app

from studio.launcher import cuda_visible

PUBLIC = {"SPACE_ID": "someone/cosmos-lora-studio"}  # how a Space says it is one: local folders default off
ABSOLUTE = re.compile(r"(?:^|[\s`'\"(=])/(?:tmp|root|home|usr|etc|var|srv|work)\b")


def digest_tree(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def call(client, api_name: str, *args, **kwargs) -> tuple[object, list[str]]:
    """The endpoint's result and the warnings it showed (gr.Warning / gr.Info reach an API caller as log lines)."""
    job = client.submit(*args, api_name=api_name, **kwargs)
    result = job.result(timeout=120)
    updates = list(job.communicator.updates._queue)  # an asyncio.Queue that nothing consumed
    return result, [u.log[0] for u in updates if getattr(u, "log", None)]


def refused(client, api_name: str, *args, **kwargs) -> str:
    """Call an endpoint that must refuse; returns its message (warning or error) after checking it names no path."""
    try:
        result, warnings = call(client, api_name, *args, **kwargs)
    except Exception as exc:  # gr.Error reaches the client as an exception carrying the message
        message = str(exc)
    else:
        assert warnings, f"{api_name}{args} was not refused: {result}"
        message = " ".join(warnings)
    assert not ABSOLUTE.search(message), f"{api_name} leaked a server path: {message}"
    return message


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A public studio (SPACE_ID set, 1 MB uploads) whose workspace holds one dataset and a link to a folder outside."""
    from gradio_client import Client

    root = tmp_path_factory.mktemp("visitor")
    outside = write_clip_dataset(root / "outside", clips=1)
    (outside / "secret.mp4").write_bytes((outside / "videos" / "clip00.mp4").read_bytes())
    (outside / "secret.txt").write_text("do not touch\n")
    ws = root / "ws"
    write_clip_dataset(ws / "datasets" / "alpha", clips=2)
    (ws / "datasets" / "linked").symlink_to(outside, target_is_directory=True)
    before = digest_tree(outside)
    with running_app(ws, root / "app.log", ("--max-upload-mb", "1"), PUBLIC) as url:
        yield Client(url, verbose=False), ws, outside
    assert digest_tree(outside) == before  # nothing outside the workspace changed, whatever was asked
    assert_only_refusals_logged(root / "app.log")


def assert_only_refusals_logged(log: Path) -> None:
    """Gradio logs every gr.Error (a refusal, or a box's own bound) with a traceback; nothing else may be there."""
    raised = set(re.findall(r"^([\w.]+(?:Error|Exception)):", log.read_text(), re.M))
    assert raised <= {"gradio.exceptions.Error"}, raised


def path_probes(ws: Path, outside: Path) -> list[str]:
    from trainer.spec.embedded import resolve_data

    return [str(outside), "../outside", "datasets/../../outside", "datasets/linked", str(resolve_data("sample"))]


def test_reading_a_folder_outside_the_workspace_is_refused(site):
    client, ws, outside = site
    for dataset in path_probes(ws, outside):
        summary, table, _ = client.predict(dataset, 9, api_name="/check_data")
        assert summary.startswith("Cannot check") and table["data"] == [], dataset
        assert "outside the workspace" in summary and not ABSOLUTE.search(summary), summary
        message = refused(client, "/preview_clip", dataset, "clip00")
        assert "outside the workspace" in message
    # A clip key is a name: climbing out of a workspace dataset finds nothing.
    message = refused(client, "/preview_clip", "datasets/alpha", "../../../outside/videos/clip00")
    assert message.startswith("datasets/alpha has no clip '../../../outside/videos/clip00'")


def test_writing_a_caption_outside_the_workspace_is_refused(site):
    client, ws, outside = site
    climbing = ["./" + "../" * 12 + str(outside / "secret").lstrip("/"), "../../outside/secret"]
    probes = [(d, k) for d in path_probes(ws, outside) + ["sample"] for k in ["clip00", *climbing]]
    for dataset, key in probes + [("datasets/alpha", k) for k in climbing]:
        client.predict(dataset, "clip00", api_name="/preview_clip")  # the editor loads what it can
        refused(client, "/save_caption", dataset, key, "pwned")
    assert "pwned" not in (ws / "datasets" / "alpha" / "metas" / "clip00.txt").read_text()
    message = refused(client, "/save_caption", str(outside), "clip00", "pwned")
    assert message == "The editor does not hold the caption of 'clip00' in outside; pick the clip again."


def test_the_editor_saves_only_the_clip_it_loaded(site):
    client, ws, _ = site
    client.predict("datasets/alpha", "clip01", api_name="/preview_clip")
    message = refused(client, "/save_caption", "datasets/alpha", "clip00", "wrong clip")
    assert message == "The editor does not hold the caption of 'clip00' in datasets/alpha; pick the clip again."
    (ws / "datasets" / "alpha" / "metas" / "clip01.txt").write_text("Changed by someone else.\n")
    message = refused(client, "/save_caption", "datasets/alpha", "clip01", "mine")
    assert message == (
        "The caption of 'clip01' in datasets/alpha changed since it was loaded; reload the clip and edit it again."
    )
    assert (ws / "datasets" / "alpha" / "metas" / "clip01.txt").read_text() == "Changed by someone else.\n"


def test_local_folders_are_off_and_a_value_is_never_an_option(site):
    client, ws, outside = site
    for folder in (str(outside), "--help", "../outside"):
        # The page does not offer the choice, and the server refuses it (the controller's message: test_studio_paths).
        message = refused(client, "/use_dataset", "local folder", folder, [], "", "x")
        assert "'local folder'" in message and "is not in the list of choices" in message
    assert not (ws / "datasets" / "x").exists()


def test_training_on_outside_data_or_out_of_bounds_is_refused(site):
    client, ws, outside = site
    from test_studio_app import SHORT_RUN

    for data in path_probes(ws, outside):
        _, problems, _ = client.predict(name="probe", data=data, **SHORT_RUN, api_name="/start_training")
        assert problems.startswith("**Not started:**") and "outside the workspace" in problems, problems
        assert not ABSOLUTE.search(problems), problems
    _, problems, _ = client.predict(name="probe", data="sample", model="/etc", **SHORT_RUN, api_name="/start_training")
    assert "reading a model folder of the server is turned off" in problems
    huge = {**SHORT_RUN, "rank": 100000, "max_steps": 10**12}
    _, problems, _ = client.predict(name="probe", data="sample", **huge, api_name="/start_training")
    assert "- `rank`: must be at most 256 (got 100000)" in problems
    assert "- `max_steps`: must be at most 1000000 (got 1000000000000)" in problems
    huge = {**SHORT_RUN, "height": 2048, "width": 2048}  # over any device's budget: the config says so
    _, problems, _ = client.predict(name="probe", data="sample", **huge, api_name="/start_training")
    assert "- `height`: 2048x2048x9 frames is 49152 tokens, above the 31104 (432x768x93) allowed on a GPU" in problems
    big = {**SHORT_RUN, "height": 1024, "width": 1024}
    _, problems, _ = client.predict(name="probe", data="sample", **big, api_name="/start_training")
    if not cuda_visible():  # on a GPU this size is allowed
        assert (
            "- `height`: 1024x1024x9 frames is 12288 tokens, above the 3645 (240x432x33) allowed on a CPU" in problems
        )
    assert not (ws / "runs" / "probe").exists()


def test_an_unbounded_generation_is_refused(site):
    client, _, _ = site
    from gradio_client import handle_file

    from trainer.spec.embedded import resolve_data

    frame = next((resolve_data("sample") / "videos").glob("*.mp4"))
    base = dict(
        mode="first clip (video)",
        image=None,
        video=handle_file(str(frame)),
        prompt="x",
        negative_prompt="",
        seed=0,
        guidance=7.0,
        height=64,
        width=64,
        num_frames=9,
        fps=8,
        revision="",
        guardrail=False,
        adapters=[],
        strengths={"headers": ["adapter", "strength"], "data": []},
    )
    assert refused(client, "/generate", steps=100000, model="tiny", **base) == (
        "steps: must be between 1 and 200 (got 100000)."
    )  # the steps box's bound, from trainer.spec.generate_settings
    message = refused(client, "/generate", steps=2, model=str(resolve_data("sample")), **base)
    assert "reading a model folder of the server is turned off" in message
    message = refused(client, "/generate", steps=2, model="tiny", **{**base, "height": 4096, "width": 4096})
    assert "4096x4096x9 frames is 196608 tokens, above the" in message


def test_an_oversized_upload_is_refused(site, tmp_path):
    client, ws, _ = site
    from gradio_client import handle_file

    big = tmp_path / "big.zip"
    big.write_bytes(b"\0" * (2 * 1024 * 1024))
    with pytest.raises(Exception, match="(?i)maximum|too large|exceeds"):
        client.predict("upload (.zip, or .mp4 + .txt)", "", [handle_file(str(big))], "", "big", api_name="/use_dataset")
    assert not (ws / "datasets" / "big").exists()
    assert not [p for p in (ws / ".gradio").rglob("big.zip")]


def test_a_dataset_delete_needs_its_name_and_stays_in_the_workspace(site):
    client, ws, outside = site
    message = refused(client, "/delete_dataset", "datasets/alpha", "alph")
    assert message == "Type the dataset name 'alpha' exactly to confirm deleting it."
    for dataset in ("datasets/linked", "../outside", str(outside), "sample"):
        message = refused(client, "/delete_dataset", dataset, "outside")
        assert "can be changed" in message or "read-only" in message, message
    for dataset, key in (
        ("datasets/alpha", "../../outside/videos/clip00"),
        ("datasets/linked", "clip00"),
        (str(outside), "clip00"),
        ("sample", "train_0000"),
    ):
        refused(client, "/delete_clip", dataset, key, 9)
    assert (ws / "datasets" / "alpha" / "videos").is_dir() and outside.is_dir()


def test_the_page_names_no_server_path(site):
    import urllib.request

    client, ws, _ = site
    with urllib.request.urlopen(client.src) as response:
        page = response.read().decode()
    assert str(ws) not in page and str(ws.parent) not in page


def test_run_and_adapter_folders_are_never_served_as_files(site):
    """Gradio's file route serves what a page shows (dataset clips, generations, zips in exports/); a run's
    process.log (command lines) and config.json (absolute paths), and adapter folders, are not among them."""
    import urllib.error
    import urllib.request

    client, ws, _ = site
    run = ws / "runs" / "probe"
    run.mkdir(parents=True, exist_ok=True)
    (run / "process.log").write_text(f"--- python -m trainer train --config {run / 'config.json'}\n")
    (ws / "adapters" / "imported").mkdir(parents=True, exist_ok=True)
    (ws / "adapters" / "imported" / "adapter_card.json").write_text("{}")

    def status(path: Path) -> int:
        try:
            with urllib.request.urlopen(f"{client.src.rstrip('/')}/gradio_api/file={path}") as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    assert status(ws / "datasets" / "alpha" / "videos" / "clip00.mp4") == 200
    assert status(run / "process.log") == 403
    assert status(ws / "adapters" / "imported" / "adapter_card.json") == 403


@pytest.fixture(scope="module")
def private_demo(tmp_path_factory):
    """A read-only studio behind a password, with one run and one dataset to be tempted by."""
    root = tmp_path_factory.mktemp("readonly")
    ws = root / "ws"
    write_clip_dataset(ws / "datasets" / "alpha", clips=1)
    run = ws / "runs" / "old"
    run.mkdir(parents=True)
    (run / "config.json").write_text('{"data": "sample", "name": "old", "output_dir": "runs"}')
    (run / "status.json").write_text('{"state": "stopped", "step": 3, "total": 9}')
    with running_app(ws, root / "app.log", ("--read-only", "--auth", "ada:lovelace"), PUBLIC) as url:
        yield url, ws
    assert_only_refusals_logged(root / "app.log")


def test_sign_in_rejects_a_wrong_password(private_demo):
    from gradio_client import Client

    url, _ = private_demo
    with pytest.raises(Exception, match="(?i)login|credentials|password|401"):
        Client(url, auth=("ada", "babbage"), verbose=False)
    with pytest.raises(Exception, match="(?i)login|credentials|password|401|auth"):
        Client(url, verbose=False)  # no sign-in at all


def test_read_only_refuses_every_change(private_demo):
    from gradio_client import Client
    from test_studio_app import SHORT_RUN

    url, ws = private_demo
    client = Client(url, auth=("ada", "lovelace"), verbose=False)
    read_only = "This studio is read-only: {} is turned off (browse, compare and download only)."
    assert refused(client, "/delete_dataset", "datasets/alpha", "alpha") == read_only.format("deleting a dataset")
    assert refused(client, "/delete_run", "old", "old") == read_only.format("deleting runs")
    assert refused(client, "/resume_run", "old") == read_only.format("resuming runs")
    # Publishing would upload with the server's own Hub token.
    assert refused(client, "/publish_adapter", "old", "someone/x", True) == read_only.format("publishing to the Hub")
    assert refused(client, "/delete_clip", "datasets/alpha", "clip00", 9) == read_only.format("deleting clips")
    client.predict("datasets/alpha", "clip00", api_name="/preview_clip")
    assert refused(client, "/save_caption", "datasets/alpha", "clip00", "x") == read_only.format("editing captions")
    _, problems, _ = client.predict(name="new", data="sample", **SHORT_RUN, api_name="/start_training")
    assert problems == "**Not started:** " + read_only.format("training")
    assert "is not in the list of choices" in refused(client, "/use_dataset", "Hub dataset", "", [], "nvidia/x", "x")
    summary, _, _ = client.predict("datasets/alpha", 9, api_name="/check_data")  # browsing still works
    assert summary.startswith("1 clip in datasets/alpha")
    assert (ws / "datasets" / "alpha" / "metas" / "clip00.txt").read_text() == "A red box slides down."
    assert (ws / "runs" / "old" / "config.json").exists() and not (ws / "runs" / "new").exists()
