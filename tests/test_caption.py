"""`trainer caption`: missing captions written by a (tiny, random) Qwen2.5-VL in the formats the trainer reads,
never over a caption the user wrote, recorded in provenance.json, cancellable without a half-written file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.datafactory import canonical_dataset, write_clip, write_text
from trainer.__main__ import main
from trainer.caption_files import (
    DEFAULT_TEMPLATE,
    CaptionError,
    instruction,
    parse_variants,
    plan,
    read_captions_record,
)
from trainer.datasets import list_items

FAST = ["--max-new-tokens", "6", "--frames", "3", "--precision", "fp32"]


def _events(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_missing_captions_are_written_and_the_trainer_reads_them(tmp_path, tiny_vlm, capsys):
    data = canonical_dataset(tmp_path / "data", {"a": "The left arm waves.", "b": None, "c": None})
    assert main(["caption", str(data), "--model", str(tiny_vlm), "--events", *FAST]) == 0
    events = _events(capsys.readouterr().out)
    assert [e["event"] for e in events] == ["start", "progress", "progress", "done"]
    assert (events[0]["clips"], events[0]["skipped"]) == (2, 1)
    assert [e["key"] for e in events[1:3]] == ["b", "c"]
    assert [e["path"] for e in events[1:3]] == ["metas/b.txt", "metas/c.txt"]
    assert events[-1] == {"event": "done", "written": 2, "failed": 0, "out_dir": str(data)}
    items = {item.key: item.caption for item in list_items(data)}
    assert items["a"] == "The left arm waves."  # the user's caption is untouched
    assert items["b"] == events[1]["captions"]["long"] and items["b"]
    assert items["c"] and (data / "metas" / "c.txt").read_text().endswith("\n")
    (record,) = read_captions_record(data)
    assert record["model"] == str(tiny_vlm) and record["clips"] == ["b", "c"]
    assert record["template"] == DEFAULT_TEMPLATE and record["variants"] == ["long"]
    assert record["date"].endswith("Z") and record["frames_per_clip"] == 3

    # Resumable and overwrite-safe: a second run finds nothing to do and changes nothing.
    before = {p.name: p.read_text() for p in (data / "metas").iterdir()}
    assert main(["caption", str(data), "--model", str(tiny_vlm), "--events", *FAST]) == 0
    events = _events(capsys.readouterr().out)
    assert (events[0]["clips"], events[0]["skipped"], events[-1]["written"]) == (0, 3, 0)
    assert {p.name: p.read_text() for p in (data / "metas").iterdir()} == before

    # --overwrite replaces even the user's caption, and a template of one's own is recorded.
    template = write_text(tmp_path / "prompt.txt", "Name the gripper. {length}")
    assert (
        main(["caption", str(data), "--model", str(tiny_vlm), "--overwrite", "--template", str(template), *FAST]) == 0
    )
    assert "3 caption files written" in capsys.readouterr().out
    assert (data / "metas" / "a.txt").read_text().strip() != "The left arm waves."
    assert [r["template"] for r in read_captions_record(data)] == [DEFAULT_TEMPLATE, "Name the gripper. {length}"]


def test_several_variants_go_to_json_captions_each_variant_readable(tmp_path, tiny_vlm, capsys):
    data = canonical_dataset(tmp_path / "data", {"a": None, "b": None})
    argv = ["caption", str(data), "--model", str(tiny_vlm), "--variants", "short,long", *FAST]
    assert main(argv) == 0
    prompts = json.loads((data / "captions" / "a.json").read_text())
    assert set(prompts) == {"long", "short"}
    for variant in ("long", "short"):
        assert [item.caption for item in list_items(data, variant)] == [
            json.loads((data / "captions" / f"{k}.json").read_text())[variant] for k in ("a", "b")
        ]
    assert read_captions_record(data)[0]["variants"] == ["long", "short"]


def test_proposals_go_to_another_folder_and_the_dataset_is_left_alone(tmp_path, tiny_vlm, capsys):
    data = canonical_dataset(tmp_path / "data", {"a": None, "b": "Both arms lift a box."})
    out = tmp_path / "proposals"
    assert main(["caption", str(data), "--model", str(tiny_vlm), "--to", str(out), *FAST]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.txt", "provenance.json"]
    assert not (data / "metas" / "a.txt").exists() and not (data / "provenance.json").exists()
    assert read_captions_record(out)[0]["clips"] == ["a"]


def test_tiny_model_and_other_unusable_requests_are_refused_with_the_fix(tmp_path, capsys):
    data = canonical_dataset(tmp_path / "data", {"a": None})
    assert main(["caption", str(data), "--model", "tiny"]) == 1
    assert "random weights, so its captions would be noise" in capsys.readouterr().err
    assert main(["caption", "sample"]) == 2
    assert "read-only" in capsys.readouterr().err
    write_text(data / "metas" / "b.txt", "A caption.")
    write_clip(data / "videos" / "b.mp4")
    assert main(["caption", str(data), "--variants", "long,short", "--events"]) == 2
    (error,) = _events(capsys.readouterr().out)
    assert error["event"] == "error" and "pass one variant (--variants long)" in error["message"]
    not_vlm = write_text(tmp_path / "bert" / "config.json", '{"model_type": "bert"}').parent
    assert main(["caption", str(data), "--model", str(not_vlm)]) == 1
    assert "captioning needs a Qwen2.5-VL-family model" in capsys.readouterr().err
    no_weights = write_text(tmp_path / "empty-vlm" / "config.json", '{"model_type": "qwen2_5_vl"}').parent
    assert main(["caption", str(data), "--model", str(no_weights)]) == 1
    assert "could not be loaded as a Qwen2.5-VL model" in capsys.readouterr().err


def test_prompt_and_variant_parsing():
    assert instruction("Describe. {length}", "short") == "Describe. Write one sentence of at most 20 words."
    assert instruction("Describe.", "medium") == "Describe.\nWrite two or three sentences."
    assert parse_variants("short, long") == ["long", "short"] and parse_variants("") is None
    with pytest.raises(CaptionError, match="subset of long,medium,short"):
        parse_variants("long,tiny")


def test_a_flat_dataset_gets_txt_beside_its_clips(tmp_path):
    write_clip(tmp_path / "x.mp4")
    write_text(tmp_path / "y.txt", "kept")
    write_clip(tmp_path / "y.mp4")
    work = plan(tmp_path)
    assert [(t.key, t.path.name) for t in work.todo] == [("x", "x.txt")] and work.skipped == ["y"]


def test_cancel_leaves_complete_files_and_a_rerun_continues(tmp_path, tiny_vlm):
    data = canonical_dataset(tmp_path / "data", {f"clip{i}": None for i in range(5)})
    argv = [sys.executable, "-m", "trainer", "caption", str(data), "--model", str(tiny_vlm), "--events", *FAST]
    process = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines = []
    for line in process.stdout:
        lines.append(json.loads(line))
        if lines[-1]["event"] == "progress":
            os.kill(process.pid, signal.SIGTERM)
            break
    lines += [json.loads(line) for line in process.stdout]
    assert process.wait(timeout=60) == 1
    assert lines[-1]["event"] == "error" and "cancelled after" in lines[-1]["message"]
    written = sorted(p.name for p in (data / "metas").iterdir())
    assert 1 <= len(written) < 5 and all((data / "metas" / n).read_text().strip() for n in written)
    assert not [p for p in data.rglob(".*")]  # no temporary file left behind
    assert read_captions_record(data)[0]["clips"] == [n.removesuffix(".txt") for n in written]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert _events(done.stdout)[0]["skipped"] == len(written)
    assert all(item.caption for item in list_items(data))
