"""A public Space left running: what an anonymous visitor (and a signed-in user) may make the owner pay for.

The studio runs as on a Space (SPACE_ID set) and is called through gradio_client, as tests/test_studio_visitor.py
does: the owner's licence (the guardrail), their Hub token and bandwidth (models, Hub datasets, Publish), their disk
(unpacked imports, the quota, text sizes), what is served, and whether messages are true. studio.access holds the
visitor / signed-in user / owner policy; its size bound is checked here with a stand-in Hub listing.
"""

from __future__ import annotations

import json
import os
import re
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import write_clip_dataset
from test_studio_app import running_app
from test_studio_visitor import ABSOLUTE, PUBLIC, assert_only_refusals_logged, refused

from studio.access import Access, AccessRefused, Role
from trainer.spec.config import DEFAULT_HUB_MODEL

NVIDIA = DEFAULT_HUB_MODEL


def generation(**changes) -> dict:
    """/generate's arguments for a first frame from the built-in sample, with `changes`."""
    from gradio_client import handle_file

    from trainer.spec.embedded import resolve_data

    frame = next((resolve_data("sample") / "videos").glob("*.mp4"))
    base = dict(
        mode="first clip (video)",
        image=None,
        video=handle_file(str(frame)),
        prompt="A robot arm picks up a cube.",
        negative_prompt="",
        seed=0,
        steps=2,
        guidance=1.0,
        height=64,
        width=64,
        num_frames=9,
        fps=8,
        model="tiny",
        revision="",
        guardrail=True,
        precision="auto",
        adapters=[],
        strengths={"headers": ["adapter", "strength"], "data": []},
    )
    return base | changes


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    """A public studio, no sign-in, an empty Hugging Face cache: the defaults a new Space owner gets."""
    from gradio_client import Client

    root = tmp_path_factory.mktemp("space")
    ws = root / "ws"
    write_clip_dataset(ws / "datasets" / "alpha", clips=1)
    env = {**PUBLIC, "HF_HOME": str(root / "hf")}
    with running_app(ws, root / "app.log", (), env) as url:
        yield Client(url, verbose=False), ws
    assert_only_refusals_logged(root / "app.log")


def test_a_visitor_cannot_turn_the_guardrail_off_for_nvidias_model(space):
    client, ws = space
    guardrail = "guardrail: this public studio keeps NVIDIA's guardrail on (its Open Model License ends the owner's "
    assert refused(client, "/generate", **generation(model=NVIDIA, guardrail=False)).startswith(guardrail)
    assert refused(client, "/evaluate", **eval_args(model=NVIDIA, guardrail=False)).startswith(guardrail)
    # The control is locked on and says why.
    (control,) = [c for c in client.config["components"] if c.get("props", {}).get("elem_id") == "gen-guardrail"]
    assert control["props"]["interactive"] is False and control["props"]["value"] is True
    assert "Open Model License ends the owner's rights" in control["props"]["info"]
    models = [c["props"].get("info") for c in client.config["components"] if c.get("props", {}).get("label") == "model"]
    assert f"This public studio offers tiny, {NVIDIA} and what its cache holds." in models  # Generate's model
    assert not [p for p in (ws / "generations").iterdir() if p.is_dir() and p.name != "inputs"]


def eval_args(**changes) -> dict:
    """/evaluate's arguments: the generation settings, one held-out clip of the sample, with `changes`."""
    settings = {k: v for k, v in generation().items() if k not in ("mode", "image", "video", "prompt")}
    return settings | {"eval_data": "sample:held_out", "eval_clips": 1} | changes


def test_a_visitor_uses_only_the_allowed_models_and_datasets(space):
    client, ws = space
    from test_studio_app import SHORT_RUN

    message = refused(client, "/generate", **generation(model="someone/arbitrary-repo"))
    assert message == (
        "model: 'someone/arbitrary-repo' is not among the models this public studio offers; use 'tiny' or "
        f"'{NVIDIA}' (the owner adds others with --allow-model)."
    )
    # NVIDIA's model only at its pinned revision.
    assert refused(client, "/generate", **generation(model=NVIDIA, revision="main")).startswith(
        f"model: '{NVIDIA}' is not among the models"
    )
    _, problems, _ = client.predict(
        name="probe", data="sample", **{**SHORT_RUN, "model": "someone/x"}, api_name="/start_training"
    )
    assert "model: 'someone/x' is not among the models this public studio offers" in problems
    samples = {**SHORT_RUN, "model": NVIDIA, "sample_every": 1}
    _, problems, _ = client.predict(name="probe", data="sample", **samples, api_name="/start_training")
    assert "sample_every: samples during training render NVIDIA's model without its guardrail" in problems
    assert not (ws / "runs" / "probe").exists()
    message = refused(client, "/use_dataset", "Hub dataset", "", [], "someone/data", "data")
    assert message.endswith(
        "Hub dataset 'someone/data' is not among the datasets this public studio offers; upload a .zip instead "
        "(the owner adds Hub datasets with --allow-dataset)."
    )
    assert not (ws / "datasets" / "data").exists()


def test_a_visitor_cannot_publish_with_the_owners_token(space):
    client, _ = space
    assert refused(client, "/publish_adapter", "any", "someone/x", True) == (
        "Publishing to the Hub uses the owner's token, so this public studio allows it only to signed-in users; "
        "the owner turns sign-in on with --auth (STUDIO_AUTH)."
    )


@pytest.fixture(scope="module")
def team_space(tmp_path_factory):
    """The same public studio behind --auth: its users are the owner's team."""
    from gradio_client import Client

    root = tmp_path_factory.mktemp("team")
    env = {**PUBLIC, "HF_HOME": str(root / "hf")}
    with running_app(root / "ws", root / "app.log", ("--auth", "ada:lovelace"), env) as url:
        yield Client(url, auth=("ada", "lovelace"), verbose=False)
    assert_only_refusals_logged(root / "app.log")


def test_a_signed_in_user_may_publish_but_not_bypass_the_guardrail(team_space):
    client = team_space
    assert refused(client, "/publish_adapter", "", "someone/x", True) == "Choose an adapter to publish first."
    assert refused(client, "/generate", **generation(model=NVIDIA, guardrail=False)).startswith("guardrail: ")
    # Beyond the allow-list the Hub's listing must show the size first; offline it cannot.
    message = refused(client, "/generate", **generation(model="someone/arbitrary-repo"))
    assert message.startswith("model: cannot check the size of 'someone/arbitrary-repo' on the Hub")


def listing(*sizes: int):
    """A stand-in HfApi whose repositories hold files of these sizes."""
    info = lambda repo_id, revision=None, files_metadata=False: SimpleNamespace(  # noqa: E731
        siblings=[SimpleNamespace(size=s) for s in sizes]
    )
    return SimpleNamespace(model_info=info, dataset_info=info)


def test_the_policy_by_role(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    owner, visitor = Access(), Access(public=True)
    user = Access(public=True, signed_in=True, max_download_gb=1)
    assert [a.role for a in (owner, visitor, user)] == [Role.OWNER, Role.VISITOR, Role.USER]
    owner.check_model("someone/anything", "main")
    owner.check_guardrail(NVIDIA, False)
    owner.check_publish()
    visitor.check_model(NVIDIA)
    visitor.check_model("tiny")
    visitor.check_guardrail("tiny", False)
    with pytest.raises(AccessRefused, match="^guardrail: "):
        visitor.check_guardrail(NVIDIA, False)
    Access(public=True, guardrail_optional=True).check_guardrail(NVIDIA, False)  # the owner opened it
    Access(public=True, models=("someone/mine@v1",)).check_model("someone/mine", "v1")
    with pytest.raises(AccessRefused, match="not among the models"):
        Access(public=True, models=("someone/mine@v1",)).check_model("someone/mine", "v2")
    # What is already in the cache costs no download: any caller may use it.
    (tmp_path / "hf" / "hub" / "models--someone--cached" / "refs").mkdir(parents=True)
    (tmp_path / "hf" / "hub" / "models--someone--cached" / "refs" / "main").write_text("abc")
    visitor.check_model("someone/cached")
    user.check_model("someone/small", api=listing(2**29, 2**28))
    with pytest.raises(AccessRefused) as big:
        user.check_hub_dataset("someone/big", api=listing(2**30, 2**29))
    assert str(big.value) == (
        "Hub dataset: 'someone/big' holds 1.5 GB, more than the 1 GB this studio downloads (--max-download-gb); "
        "pick a smaller one."
    )
    Access(public=True, datasets=("someone/big",)).check_hub_dataset("someone/big")  # the owner listed it
    with pytest.raises(AccessRefused) as long:
        visitor.check_model("someone/" + "x" * 10**6)  # a megabyte of id is quoted in one line
    assert len(str(long.value)) < 300


def test_the_defaults_on_a_space_and_on_loopback(monkeypatch):
    import app

    for name in ("SPACE_ID", "STUDIO_MAX_WORKSPACE_GB", "GRADIO_SERVER_NAME", "STUDIO_AUTH"):
        monkeypatch.delenv(name, raising=False)
    local = app.parse_args([])
    assert local.access.role is Role.OWNER and local.max_workspace_gb == 0 and local.local_folders
    monkeypatch.setenv("SPACE_ID", PUBLIC["SPACE_ID"])
    space = app.parse_args([])
    assert space.access.role is Role.VISITOR and space.max_workspace_gb == app.PUBLIC_WORKSPACE_GB
    assert not space.local_folders and not space.access.guardrail_optional
    assert app.parse_args(["--auth", "a:b"]).access.role is Role.USER
    monkeypatch.delenv("SPACE_ID")
    assert app.parse_args(["--host", "0.0.0.0"]).access.role is Role.VISITOR
    opened = app.parse_args(["--host", "0.0.0.0", "--max-workspace-gb", "0", "--allow-guardrail-off"])
    assert opened.max_workspace_gb == 0 and opened.access.guardrail_optional


# --- bounds ---------------------------------------------------------------------------------------------------
def zip_of_zeros(path: Path, mib: int) -> Path:
    """A small archive holding `mib` MiB of zeros as one clip: cheap to build, far larger unpacked."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("videos/clip00.mp4", "w") as out:
        for _ in range(mib):
            out.write(bytes(2**20))
    return path


def test_an_archive_unpacking_to_far_more_than_it_weighs_is_refused(space, tmp_path):
    client, ws = space
    from gradio_client import handle_file

    bomb = zip_of_zeros(tmp_path / "bomb.zip", 40)
    assert bomb.stat().st_size < 2**20
    message = refused(client, "/use_dataset", "upload (.zip, or .mp4 + .txt)", "", [handle_file(str(bomb))], "", "b")
    assert "bomb.zip unpacks to more than 50 times its " in message
    assert message.endswith(
        "which no dataset of videos does; nothing was imported: zip the .mp4 clips and .txt captions themselves."
    )
    assert sorted(p.name for p in (ws / "datasets").iterdir() if p.suffix != ".log") == ["alpha"]


def test_an_import_stops_at_its_bounds_and_leaves_nothing(tmp_path):
    from trainer.importing import ImportRefused, UnpackBounds, import_dataset

    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for key in ("a", "b", "c"):
            zf.writestr(f"videos/{key}.mp4", os.urandom(2**20))  # incompressible: only the byte bound stops it
    into = tmp_path / "datasets"
    with pytest.raises(ImportRefused, match=r"^data.zip unpacks to more than 2.0 MB, the most this import may take"):
        import_dataset(str(archive), into / "data", bounds=UnpackBounds(max_bytes=2 * 2**20))
    with pytest.raises(ImportRefused, match=r"^data.zip holds 3 files, more than the 2 one import may hold"):
        import_dataset(str(archive), into / "data", bounds=UnpackBounds(max_files=2))
    assert list(into.iterdir()) == []


def test_a_prompt_is_bounded_before_it_reaches_the_model(space):
    client, ws = space
    from trainer.spec.bounds import MAX_TEXT

    message = refused(client, "/generate", **generation(prompt="x" * (MAX_TEXT + 1)))
    assert (
        message == f"Fix the settings: prompt: text of at most {MAX_TEXT} characters (got {MAX_TEXT + 1}); shorten it."
    )


# --- messages -------------------------------------------------------------------------------------------------
def test_every_number_is_bounded_with_its_name(space):
    client, ws = space
    from test_studio_app import SHORT_RUN

    assert (
        refused(client, "/generate", **generation(seed=10**30)) == "seed: must be between 0 and 4294967295 (got 1e+30)."
    )
    assert refused(client, "/evaluate", **eval_args(eval_clips=10**6)).startswith("clips: must be between 1 and ")
    _, problems, _ = client.predict(
        name="big-seed", data="sample", **{**SHORT_RUN, "seed": 10**30}, api_name="/start_training"
    )
    assert f"- `seed`: must be at most 4294967295 (got {10**30})" in problems
    _, problems, _ = client.predict(
        name="big-seed", data="sample", **{**SHORT_RUN, "checkpoint_every": 10**12}, api_name="/start_training"
    )
    assert f"- `checkpoint_every`: must be at most {2**31 - 1} (got {10**12})" in problems
    assert not (ws / "runs" / "big-seed").exists()


# --- served files ---------------------------------------------------------------------------------------------
def served(client, path: Path) -> int:
    """The HTTP status of fetching `path` through Gradio's file route."""
    try:
        with urllib.request.urlopen(f"{client.src.rstrip('/')}/gradio_api/file={path}") as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_logs_are_never_served(space):
    client, ws = space
    logs = ("datasets/import.log", "datasets/caption.log", "generations/worker.log", "generations/evaluate.log")
    for log in (ws / name for name in logs):
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"--- {sys.executable} -m trainer import-data --to {ws}/datasets/x\n")
        assert served(client, log) == 403, log
    assert served(client, ws / "datasets" / "alpha" / "videos" / "clip00.mp4") == 200


def test_a_generation_is_filed_unguessably_and_hands_out_no_server_path(space):
    client, ws = space
    before = set((ws / "generations").iterdir())
    # Refused by the worker itself (an empty prompt): no folder is left behind.
    assert refused(client, "/generate", **generation(prompt="")).endswith("prompt: must not be empty")
    assert set((ws / "generations").iterdir()) == before
    status, summary, files, record = client.predict(**generation(), api_name="/generate")
    (folder,) = set((ws / "generations").iterdir()) - before - {ws / "generations" / "worker.log"}
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{16}", folder.name), folder.name
    assert status.startswith("Done: 1 variants") and f"generations/{folder.name}" in status
    handed = json.loads(Path(next(f for f in files if f.endswith("compare.json"))).read_text())
    assert handed["video"] == ".gradio/" + handed["video"].split(".gradio/", 1)[-1]  # relative to the workspace
    text = (folder / "compare.json").read_text()
    assert str(ws) not in text and not ABSOLUTE.search(text) and text.strip() == record.strip()


def test_a_caption_or_metadata_link_out_of_the_dataset_is_not_read(space, tmp_path):
    client, ws = space
    secret = tmp_path / "secret.txt"
    secret.write_text("the server's secret")
    linked = write_clip_dataset(ws / "datasets" / "linkcap", clips=1)
    (linked / "metas" / "clip00.txt").unlink()
    (linked / "metas" / "clip00.txt").symlink_to(secret)
    summary, table, _ = client.predict("datasets/linkcap", 9, api_name="/check_data")
    assert summary.startswith("1 clip in datasets/linkcap") and "secret" not in json.dumps(table)
    assert table["data"][0][-1] == "unreadable caption (metas/clip00.txt points outside the dataset; it is not read)"
    _, caption = client.predict("datasets/linkcap", "clip00", api_name="/preview_clip")
    assert caption == ""
    csv = tmp_path / "metadata.csv"
    csv.write_text("file_name,prompt\nclip00.mp4,the server's secret\n")
    flat = ws / "datasets" / "linkcsv"
    flat.mkdir()
    (flat / "clip00.mp4").write_bytes((linked / "videos" / "clip00.mp4").read_bytes())
    (flat / "metadata.csv").symlink_to(csv)
    summary, table, _ = client.predict("datasets/linkcsv", 9, api_name="/check_data")
    assert "secret" not in summary + json.dumps(table) and "metadata.csv points outside the dataset" in summary


def test_a_studio_of_visitors_withholds_the_owners_token():
    environ = {"HF_TOKEN": "hf_owner", "HUGGING_FACE_HUB_TOKEN": "hf_owner", "PATH": "/bin"}
    assert Access(public=True).withhold_token(environ)
    assert environ == {"PATH": "/bin", "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1"}
    kept = {"HF_TOKEN": "hf_owner"}
    assert not Access(public=True, signed_in=True).withhold_token(kept) and not Access().withhold_token(kept)
    assert kept == {"HF_TOKEN": "hf_owner"}


def test_a_caption_is_bounded_like_a_prompt(space):
    client, ws = space
    from trainer.spec.bounds import MAX_TEXT

    client.predict("datasets/alpha", "clip00", api_name="/preview_clip")
    message = refused(client, "/save_caption", "datasets/alpha", "clip00", "x" * (MAX_TEXT + 1))
    assert (
        message == f"The caption of 'clip00': text of at most {MAX_TEXT} characters (got {MAX_TEXT + 1}); shorten it."
    )
    assert (ws / "datasets" / "alpha" / "metas" / "clip00.txt").read_text().startswith("A red box")


def test_a_dataset_caption_longer_than_a_prompt_is_reported_not_trained_on(tmp_path):
    from trainer.datasets import check_items, list_items
    from trainer.spec.bounds import MAX_TEXT

    data = write_clip_dataset(tmp_path / "data", clips=2)
    (data / "metas" / "clip01.txt").write_text("x" * (MAX_TEXT + 1))
    items = list_items(data)
    assert [item.caption is None for item in items] == [False, True]
    report = check_items(items)[1]
    assert not report.usable and report.problem == (
        f"caption too long (text of at most {MAX_TEXT} characters (got {MAX_TEXT + 1}); shorten it)"
    )
