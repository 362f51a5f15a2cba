"""The synchronised playback bar without a browser: its settings come from compare.json, and the script finds
every part of the bar it drives (tests/test_browser_playback.py plays it for real)."""

from __future__ import annotations

import re

import gradio as gr

from studio.synced_playback import ELEM_ID, SCRIPT, TEMPLATE, player_props, synced_playback


def test_the_bar_takes_fps_and_frame_count_from_the_comparison_record():
    record = {"fps": 16, "num_frames": 93, "variants": [{"name": "base"}]}
    assert player_props(record, "#gen-videos video") == {"fps": 16.0, "frames": 93, "videos": "#gen-videos video"}
    with gr.Blocks():
        bar = synced_playback(record, "#gen-videos video")
    config = bar.get_config()
    assert config["elem_id"] == ELEM_ID and config["js_on_load"] == SCRIPT
    assert (config["props"]["fps"], config["props"]["frames"]) == (16.0, 93)


def test_every_part_the_script_looks_for_is_in_the_template():
    wanted = set(re.findall(r"\[data-(role|action)=(\w+)\]", SCRIPT))
    wanted |= {("action", a) for a in re.findall(r'action === "(\w+)"', SCRIPT)}
    present = set(re.findall(r'data-(role|action)="(\w+)"', TEMPLATE))
    assert (
        wanted
        == present
        == {
            ("action", "prev"),
            ("action", "toggle"),
            ("action", "next"),
            ("role", "scrub"),
            ("role", "counter"),
            ("role", "loop"),
        }
    )
