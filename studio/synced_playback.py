"""One play/pause, scrub bar and frame stepper under the side-by-side variant videos, driving them together.

The bar is a gr.HTML whose js_on_load (static/synced_playback.js) keeps every video on the first one's frame.
Without the script the videos are unchanged: each plays, loops and seeks with its own controls.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

SCRIPT = (Path(__file__).parent / "static" / "synced_playback.js").read_text()
ELEM_ID = "gen-playback"
# A Handlebars + JS template string (gradio fills ${...} from the props); the script finds its parts by data-*.
TEMPLATE = """
<div class="synced-playback" role="group" aria-label="play all variants together">
  <button type="button" data-action="prev" title="previous frame (all videos)">&#9664;</button>
  <button type="button" data-action="toggle" class="toggle" title="play or pause all videos">Play</button>
  <button type="button" data-action="next" title="next frame (all videos)">&#9654;</button>
  <input type="range" data-role="scrub" min="0" max="${frames - 1}" step="1" value="0"
         aria-label="frame of all videos">
  <span data-role="counter">frame 1 / ${frames}</span>
  <label><input type="checkbox" data-role="loop" checked> loop</label>
</div>
"""
STYLE = """
.synced-playback { display: flex; align-items: center; gap: 8px; padding: 4px 0; }
.synced-playback input[type=range] { flex: 1; }
.synced-playback button { padding: 2px 10px; border-radius: 6px; border: 1px solid var(--border-color-primary);
                          background: var(--button-secondary-background-fill); }
.synced-playback .toggle { min-width: 5em; }
.synced-playback span { font-variant-numeric: tabular-nums; white-space: nowrap; }
"""


def player_props(record: dict, videos: str) -> dict:
    """The bar's settings from a compare.json record: its fps and frame count, and the CSS selector of the
    videos it drives (the first one leads)."""
    return {"fps": float(record["fps"]), "frames": int(record["num_frames"]), "videos": videos}


def synced_playback(record: dict, videos: str) -> gr.HTML:
    """The control bar for the videos `videos` selects, rendered where it is called (inside a gr.render)."""
    return gr.HTML(
        "",
        html_template=TEMPLATE,
        css_template=STYLE,
        js_on_load=SCRIPT,
        elem_id=ELEM_ID,
        **player_props(record, videos),
    )
