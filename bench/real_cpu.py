"""Peak memory and DoRA cost of the real Cosmos Predict 2.5 architecture on CPU, through the CLI.

    python bench/real_cpu.py build   --work /tmp/cosmos-real           # once: model + clips (~6 GB peak)
    python bench/real_cpu.py measure --work /tmp/cosmos-real --label after [--repo .] [--ratios]
    python bench/real_cpu.py report  --work /tmp/cosmos-real           # writes the section in bench/RESULTS.md

`build` saves a random-weight pipeline built from bench/configs in bf16: the full-size transformer (28 blocks,
2048 wide) and the full Wan 2.1 VAE; the text encoder keeps its real width (3584, FFN 18944, 28/4 heads) but is
cut to TEXT_LAYERS decoder layer(s), a one-block vision tower and a VOCAB-token embedding table, so that an fp32
load stays near 10 GB (the transformer's frozen `crossattn_proj` then takes TEXT_LAYERS x 3584 inputs instead of
100352). The tokenizer is the tiny model's (every prompt is padded to 512 tokens, so the cost is the same).

`measure` runs `python -m trainer ...` from the checkout `--repo` (the current code, or an export of an older
commit) as child processes and records each child's peak RSS (wait4): a LoRA training run that builds the latent
cache, a fully cached LoRA run, a cached DoRA run, and one `generate` of the base model, the LoRA and the DoRA
adapter (per-variant seconds from compare.json). `--parts` picks what runs (`recompute`: LoRA and DoRA
without gradient checkpointing, the cost of the recompute).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "bench" / "configs"
TEXT_LAYERS = 1
VOCAB = 2048
SIZE = {"height": 64, "width": 64, "num_frames": 9}
TRAIN_STEPS = 2  # step 1 is a warm-up: the step time reported is step 2's
GEN_STEPS = 3
RANK = 8
PROMPT = "The robot arm is performing a task. A gripper picks up the red cube and places it in the bowl."


# --------------------------------------------------------------------------------------------- build
def reduced_configs(folder: Path) -> Path:
    """bench/configs with the text encoder cut as the module docstring says."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in CONFIGS.glob("*.json"):
        shutil.copy(path, folder / path.name)
    text = json.loads((CONFIGS / "text_encoder.json").read_text())
    text.update(num_hidden_layers=TEXT_LAYERS, max_window_layers=TEXT_LAYERS, vocab_size=VOCAB)
    text["vision_config"].update(depth=1, fullatt_block_indexes=[0])
    (folder / "text_encoder.json").write_text(json.dumps(text, indent=2))
    transformer = json.loads((CONFIGS / "transformer.json").read_text())
    transformer["crossattn_proj_in_channels"] = TEXT_LAYERS * text["hidden_size"]
    (folder / "transformer.json").write_text(json.dumps(transformer, indent=2))
    return folder


def build(work: Path) -> None:
    import torch

    sys.path.insert(0, str(REPO))
    from bench.inputs import build_full_pipeline, write_clips

    configs = reduced_configs(work / "configs")
    torch.set_default_dtype(torch.bfloat16)  # initialise in bf16: an fp32 init of the 2B transformer alone is 8 GB
    pipe = build_full_pipeline(torch.device("cpu"), torch.bfloat16, configs)
    torch.set_default_dtype(torch.float32)
    counts = {n: sum(p.numel() for p in getattr(pipe, n).parameters()) for n in ("transformer", "vae", "text_encoder")}
    pipe.save_pretrained(work / "model", safe_serialization=True)
    del pipe
    clips, _ = write_clips(work / "data", 2, SIZE["num_frames"], SIZE["height"], SIZE["width"])
    (work / "data" / "metas").mkdir(exist_ok=True)
    for clip in clips:
        (work / "data" / "metas" / f"{clip.video.stem}.txt").write_text(clip.caption)
    (work / "build.json").write_text(json.dumps({"params": counts, "text_layers": TEXT_LAYERS, "vocab": VOCAB}))
    print(f"built {work / 'model'}: {counts}", file=sys.stderr)


# --------------------------------------------------------------------------------------------- measure
def run_child(cmd: list[str], cwd: Path, log: Path) -> dict:
    """Run one command; its exit code, wall seconds and peak RSS (this child's own, from wait4)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(cwd)}
    t0 = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    result = {
        "cmd": " ".join(cmd[2:]),
        "rc": proc.returncode,
        "seconds": round(time.perf_counter() - t0, 1),
        "peak_rss_gib": round(usage.ru_maxrss / 2**20, 2),
    }
    print(f"  {result}", file=sys.stderr, flush=True)
    if proc.returncode:
        raise SystemExit(f"failed: {' '.join(cmd)}; see {log}")
    return result


def train(work: Path, repo: Path, out: Path, name: str, **settings) -> dict:
    cfg = {
        "data": str(work / "data"),
        "model": str(work / "model"),
        "output_dir": str(out),
        "name": name,
        "rank": RANK,
        "alpha": float(RANK),
        "max_steps": TRAIN_STEPS,
        "mixed_precision": "bf16",
        "checkpoint_every": 0,
        "guardrail": False,
        "cache_windows": 1,
        **SIZE,
        **settings,
    }
    path = out / f"{name}.json"
    path.write_text(json.dumps(cfg))
    result = run_child([sys.executable, "-m", "trainer", "train", "--config", str(path)], repo, out / f"{name}.out")
    events = [json.loads(line) for line in (out / name / "metrics.jsonl").read_text().splitlines()]
    times = [e["step_time"] for e in events if e["event"] == "step"]
    result.update(
        step_times=times,
        median_step_s=statistics.median(times[1:] or times),
        losses=[e["loss"] for e in events if e["event"] == "step"],
    )
    return result


def generate(work: Path, repo: Path, out: Path, adapters: list[Path], extra: list[str]) -> dict:
    clip = sorted((work / "data" / "videos").glob("*.mp4"))[0]
    cmd = [
        sys.executable,
        "-m",
        "trainer",
        "generate",
        "--model",
        str(work / "model"),
        "--image",
        str(clip),
        "--prompt",
        PROMPT,
        "--steps",
        str(GEN_STEPS),
        "--height",
        str(SIZE["height"]),
        "--width",
        str(SIZE["width"]),
        "--num-frames",
        str(SIZE["num_frames"]),
        "--no-guardrail",
        "--out",
        str(out / "generate"),
        *extra,
    ]
    for adapter in adapters:
        cmd += ["--adapter", str(adapter)]
    result = run_child(cmd, repo, out / "generate.out")
    record = json.loads((out / "generate" / "compare.json").read_text())
    result["variant_seconds"] = {v["name"]: v["seconds"] for v in record["variants"]}
    return result


def measure(args) -> None:
    from bench.provenance import commit, machine, now

    work, repo, parts = args.work, args.repo.resolve(), set(args.parts.split(","))
    out = work / f"runs-{args.label}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    if "train" in parts:
        shutil.rmtree(work / "cache", ignore_errors=True)  # the first run must build the cache (and load encoders)
    os.environ["COSMOS_STUDIO_CACHE"] = str(work / "cache")
    path = work / f"{args.label}.json"
    results = {
        "label": args.label,
        "repo": str(repo),
        "commit": commit(repo),
        "date": now(),
        "machine": machine(),
        "size": SIZE,
        "rank": RANK,
        "train_steps": TRAIN_STEPS,
        "gen_steps": GEN_STEPS,
    }

    def record(key, value):
        results[key] = value
        path.write_text(json.dumps(results, indent=2))  # after every part: an interrupted run keeps what it measured

    if "train" in parts:
        record("train_builds_cache", train(work, repo, out, "lora-build", max_steps=1))
        record("train_lora_cached", train(work, repo, out, "lora"))
    if "dora" in parts:
        record("train_dora_cached", train(work, repo, out, "dora", adapter="dora"))
    if "recompute" in parts:
        record("train_lora_no_recompute", train(work, repo, out, "lora-nockpt", gradient_checkpointing=False))
        record(
            "train_dora_no_recompute",
            train(work, repo, out, "dora-nockpt", adapter="dora", gradient_checkpointing=False),
        )
    if "generate" in parts:
        adapters = args.adapters or [out / "lora" / "adapter", out / "dora" / "adapter"]
        record("generate", generate(work, repo, out, adapters, args.generate_args or []))
    print(f"wrote {path}", file=sys.stderr)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=["build", "measure"])
    p.add_argument("--work", type=Path, required=True, help="scratch folder (model, clips, runs, results)")
    p.add_argument("--repo", type=Path, default=REPO, help="the checkout whose trainer runs (default: this one)")
    p.add_argument("--label", default="after")
    p.add_argument(
        "--parts",
        default="train,dora,generate",
        help="comma-separated: train (cache build + cached LoRA), dora (cached DoRA), recompute (LoRA and "
        "DoRA without gradient checkpointing), generate (base, LoRA, DoRA)",
    )
    p.add_argument(
        "--adapters",
        nargs=2,
        type=Path,
        metavar=("LORA", "DORA"),
        help="adapter folders for generate (default: this measurement's own runs)",
    )
    p.add_argument("--generate-args", nargs=argparse.REMAINDER, help="extra arguments for generate (last)")
    args = p.parse_args(argv)
    if args.what == "build":
        build(args.work)
    else:
        measure(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
