"""bench/RESULTS.md: one section per kind of run (gpu, cpu), each replaced only by a run of its kind, plus
results-<section>.json with every number for scripts."""

from __future__ import annotations

import json
import re
from pathlib import Path

GIB_24GB_CARD = 22.5  # what PyTorch can reserve on a 24 GB card after the CUDA context and fragmentation

HEADER = """# Benchmark results

Written by `bench/bench.py` (see its docstring for what each mode does); each section is replaced by the next run
of its kind. Timing lives here, never in tests.
"""
NOT_RUN = {
    "gpu": """## GPU: the recipe against the studio (432x768, 93 frames, batch 1, LoRA rank 32, bf16)

**Not measured yet.** No GPU was available for these measurements (the latest, 2026-12-04, ran on a 2-core CPU
only), so this section holds no timings, memory or MFU. On the first machine with one H100 or H200, run
`bash bench/gpu.sh` before anything else: in at most 8 minutes, without network, it measures every GPU number
(these modes, DoRA against LoRA, one generation per memory mode, the memory estimate beside each measured peak,
`pytest -m gpu`) into `$OUT/results-gpu.json` and this section. Alone,

    python bench/bench.py

builds the full-size architecture with random weights, measures `reference` and `studio` in one run
(about 10 minutes including compilation and one 36-step generation) and rewrites this section. If
torch.compile fails there, `python bench/bench.py --modes reference,studio-no-compile` measures the rest;
`--modes` also knows `studio-uncached` and `studio-every-block`.

Known without a GPU (arithmetic, not measurements): a training step is 911 TFLOP of model FLOPs at 31,104
tokens (bench/flops.py; the reference notes' 889 TFLOP leaves out the AdaLN matmuls). On disk, a cached
432x768x93 latent window is 3.98 MB (bf16, 16x24x54x96) and a cached prompt 1.05 MB (bf16, 512x1024, after the
frozen projection) where the raw embedding would be 102.8 MB (512x100352).
""",
    "cpu": """## CPU smoke: the tiny model, cached against uncached

Not measured yet: run `python bench/bench.py --smoke`.
""",
}


def write_results(out: Path, payload: dict) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    section = payload["section"]
    (out / f"results-{section}.json").write_text(json.dumps(payload, indent=2) + "\n")
    path = out / "RESULTS.md"
    text = path.read_text() if path.exists() else HEADER
    for name in ("gpu", "cpu"):
        if _begin(name) not in text:
            text = text.rstrip("\n") + f"\n\n{_begin(name)}\n{NOT_RUN[name]}{_end(name)}\n"
    body = render_gpu(payload) if section == "gpu" else render_cpu(payload)
    pattern = re.compile(re.escape(_begin(section)) + ".*?" + re.escape(_end(section)), re.S)
    text = pattern.sub(lambda _: f"{_begin(section)}\n{body}{_end(section)}", text)
    path.write_text(text)
    return path


def _begin(name: str) -> str:
    return f"<!-- bench:{name}:begin -->"


def _end(name: str) -> str:
    return f"<!-- bench:{name}:end -->"


def _provenance(p: dict) -> str:
    v = p["versions"]
    cuda = f" (CUDA {v['cuda']})" if v.get("cuda") and p["section"] == "gpu" else ""
    return (
        f"{p['device']} · {p['date']} · torch {v['torch']}{cuda} · diffusers {v['diffusers']} · "
        f"transformers {v['transformers']} · peft {v['peft']} · Python {v['python']}"
    )


def _size(p: dict) -> str:
    s = p["size"]
    return (
        f"{s['height']}x{s['width']}, {s['frames']} frames, batch {s['batch']}, LoRA rank {s['rank']}, {s['precision']}"
    )


def _by_name(p: dict) -> dict:
    return {m["mode"]: m for m in p["modes"]}


def _settings(m: dict) -> str:
    return m["settings"]


def render_gpu(p: dict) -> str:
    modes = _by_name(p)
    lines = [
        f"## GPU: the recipe against the studio ({_size(p)})",
        "",
        _provenance(p),
        "",
        _what(p) + f"Command: `{p['command']}` ({p['bench_seconds'] / 60:.1f} min).",
        "",
        "| mode | s/step (median) | peak memory, allocated / reserved | MFU | settings |",
        "|---|---|---|---|---|",
    ]
    for m in p["modes"]:
        mfu = f"{100 * m['mfu']:.1f}%" if m.get("mfu") else "n/a"
        mem = f"{m['peak_allocated_gib']:.1f} / {m['peak_reserved_gib']:.1f} GiB" if "peak_reserved_gib" in m else "n/a"
        lines.append(f"| {m['mode']} | {m['s_per_step']:.3f} (of {m['steps']}) | {mem} | {mfu} | {_settings(m)} |")
    lines.append("")
    if "reference" in modes and "studio" in modes:
        ratio = modes["reference"]["s_per_step"] / modes["studio"]["s_per_step"]
        lines.append(f"- **Speed-up, reference ÷ studio: {ratio:.2f}x** (the goal is at least 3x).")
    if "peak_reserved_gib" in modes.get("studio", {}):
        reserved = modes["studio"]["peak_reserved_gib"]
        fits = "yes" if reserved <= GIB_24GB_CARD else "no"
        lines.append(
            f"- Studio fits a 24 GB card: **{fits}** (peak reserved {reserved:.1f} GiB; a 24 GB card leaves "
            f"about {GIB_24GB_CARD} GiB to PyTorch)."
        )
    peak = f"{p['peak_flops'] / 1e12:.0f} TFLOP/s dense bf16" if p.get("peak_flops") else "an unknown peak (n/a)"
    lines.append(
        f"- Model FLOPs per training step: {p['flops']['train'] / 1e12:.4g} TFLOP ({p['flops']['tokens']} "
        f"tokens; formula in bench/flops.py); MFU is against {peak}."
    )
    lines += _estimates(p)
    lines += _common(p, modes)
    return "\n".join(lines) + "\n"


def _what(p: dict) -> str:
    if p.get("rehearsal"):
        return "**Rehearsal: the tiny model's configs on a CPU at a toy size; not GPU numbers.** "
    return "Full-size architecture from bench/configs with random weights. "


def _estimates(p: dict) -> list[str]:
    """The memory estimate (trainer/memory.py) beside each measured peak, and each generation memory mode."""
    lines = []
    for m in p["modes"]:
        if "estimate_gib" in m:
            lines.append(f"- {m['mode']}: memory estimate {m['estimate_gib']:.2f} GiB{_against(m)}.")
    for g in p.get("generation_modes") or []:
        lines.append(
            f"- Generation, memory {g['memory']}: {g['frames']} frames at {g['height']}x{g['width']}, {g['steps']} "
            f"steps with CFG {g['cfg']:g} in {g['seconds']:.1f} s; estimate {g['estimate_gib']:.2f} GiB{_against(g)}."
        )
    return lines


def _against(m: dict) -> str:
    if m.get("peak_allocated_gib") is None:
        return " (no CUDA peak on this device)"
    peak = m["peak_allocated_gib"]
    return f", measured peak {peak:.2f} GiB allocated ({100 * (m['estimate_gib'] / peak - 1):+.0f} %)"


def render_cpu(p: dict) -> str:
    modes = _by_name(p)
    lines = [
        f"## CPU smoke: the tiny model, cached against uncached ({_size(p)})",
        "",
        _provenance(p),
        "",
        f"Command: `{p['command']}` ({p['bench_seconds']:.0f} s). Modes run interleaved, step by step, in one "
        "process; the uncached modes read and decode the clip every step, as a `cache: off` run does. "
        "Compilation is off on CPU (inductor takes minutes on 2 cores).",
        "",
        "| mode | s/step (median) | min / max | settings |",
        "|---|---|---|---|",
    ]
    for m in p["modes"]:
        lines.append(
            f"| {m['mode']} | {m['s_per_step']:.4f} (of {m['steps']}) | {m['min_s']:.4f} / "
            f"{m['max_s']:.4f} | {_settings(m)} |"
        )
    lines.append("")
    if "studio-uncached" in modes and "studio" in modes:
        ratio = modes["studio-uncached"]["s_per_step"] / modes["studio"]["s_per_step"]
        lines.append(f"- **Cached vs uncached step time (studio-uncached ÷ studio, same step settings): {ratio:.2f}x**")
    if "reference" in modes and "studio" in modes:
        ratio = modes["reference"]["s_per_step"] / modes["studio"]["s_per_step"]
        lines.append(f"- Reference ÷ studio: {ratio:.2f}x")
    lines += _common(p, modes)
    return "\n".join(lines) + "\n"


def _common(p: dict, modes: dict) -> list[str]:
    lines = []
    g = p.get("generation")
    if g:
        mem = f", peak {g['peak_allocated_gib']:.1f} GiB allocated" if "peak_allocated_gib" in g else ""
        lines.append(
            f"- Generation of one {g['frames']}-frame {p['size']['height']}x{p['size']['width']} video, "
            f"{g['steps']} steps with CFG {g['cfg']:g} (studio model, after a 2-step warm-up): "
            f"**{g['seconds']:.1f} s**{mem}."
        )
    cached = next((m for m in p["modes"] if "cache_build_s" in m), None)
    if cached:
        lines.append(
            f"- Cache: {cached['cache_items']} items built in {cached['cache_build_s']:.1f} s; on disk a latent "
            f"window is {cached['latent_bytes'] / 1e6:.2f} MB and a projected prompt embedding "
            f"{cached['prompt_bytes'] / 1e6:.2f} MB."
        )
    for m in p["modes"]:
        warm = ", ".join(f"{s:.2f}" for s in m.get("warmup_s", []))
        losses = ", ".join(f"{x:.4f}" for x in m["losses"])
        lines.append(f"- {m['mode']}: warm-up steps {warm or 'none'} s; losses of the timed steps {losses}.")
    return lines
