"""The stages of bench/gpu.sh. Each stage is one process that appends one JSON line to OUT/stages.jsonl as soon as
it has its numbers (so a timeout keeps what was measured); `merge` turns the lines into OUT/results-gpu.json
(bench/bench.py's schema: device, size, modes with s_per_step, peak_allocated_gib and mfu) and OUT/RESULTS.md.

    python bench/gpu_bench.py env      --out OUT             versions, the device, its memory
    python bench/gpu_bench.py train    --out OUT --mode M    one bench/bench.py mode: step time, peak, estimate
    python bench/gpu_bench.py generate --out OUT             one generation per memory mode: time, peak, estimate
    python bench/gpu_bench.py merge    --out OUT             results-gpu.json and RESULTS.md from the lines

`--rehearse` runs the same code on the CPU with the tiny model's configs (random weights) at a toy size.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

STAGES_FILE = "stages.jsonl"
TINY_BASE = REPO / "trainer" / "tinyworld" / "assets" / "tiny-base"
FULL = {"height": 432, "width": 768, "frames": 93, "rank": 32, "profile": "nvidia/Cosmos-Predict2.5-2B"}
FULL_GENERATION = {"height": 704, "width": 1280, "frames": 93}  # the pipeline's own default size
TOY = {"height": 64, "width": 64, "frames": 9, "rank": 32, "profile": "tiny"}
TOY_GENERATION = {"height": 64, "width": 96, "frames": 9}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("stage", choices=["env", "train", "generate", "merge"])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--mode", help="train: a bench/bench.py mode (reference, studio, studio-no-compile, studio-dora)")
    p.add_argument("--steps", type=int, default=4, help="train: timed steps; generate: denoising steps")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--rehearse", action="store_true", help="CPU, tiny configs, toy size")
    p.add_argument("--started", type=float, help="merge: the epoch second gpu.sh started (for its duration)")
    args = p.parse_args(argv)
    args.size = TOY if args.rehearse else FULL
    args.generation_size = TOY_GENERATION if args.rehearse else FULL_GENERATION
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def emit(args, stage: str, **fields) -> None:
    with (args.out / STAGES_FILE).open("a") as f:
        f.write(json.dumps({"stage": stage, **fields}) + "\n")


def configs_folder(args) -> Path:
    """bench/configs (the real sizes), or for a rehearsal the tiny model's configs in that layout."""
    if not args.rehearse:
        from bench.inputs import CONFIGS

        return CONFIGS
    folder = Path(tempfile.mkdtemp(prefix="gpu-rehearse-configs-"))
    for name, file in (
        ("transformer", "config.json"),
        ("vae", "config.json"),
        ("text_encoder", "config.json"),
        ("scheduler", "scheduler_config.json"),
    ):
        (folder / f"{name}.json").write_text((TINY_BASE / name / file).read_text())
    return folder


def device_of(args):
    import torch

    return torch.device("cpu" if args.rehearse else "cuda")


# --------------------------------------------------------------------------------------------- stages
def env(args) -> int:
    import torch

    versions = _versions()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    fields = {"versions": versions, "cuda": cuda, "started": time.time(), "date": _today(), "flops": _flops(args)}
    if cuda:
        props = torch.cuda.get_device_properties(device)
        fields.update(
            device=f"{props.name} ({props.total_memory / 2**30:.0f} GiB)", total_gib=props.total_memory / 2**30
        )
    else:
        fields.update(device=f"CPU: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")
    emit(args, "env", **fields)
    print(f"gpu_bench: {fields['device']}; {versions}", file=sys.stderr)
    if not cuda and not args.rehearse:
        print("gpu_bench: no CUDA GPU here; `bash bench/gpu.sh --rehearse` is the CPU rehearsal.", file=sys.stderr)
        return 2
    return 0


def train(args) -> int:
    """Each mode of `--mode` (comma-separated) in turn, each with a fresh pipeline, each emitted when measured."""
    for name in args.mode.split(","):
        train_mode(args, name)
    return 0


def train_mode(args, name: str) -> None:
    import gc

    import torch

    from bench import bench
    from bench.flops import dit_flops, peak_flops
    from trainer.spec import memory

    device, configs = device_of(args), configs_folder(args)
    mode = bench.MODES[name]
    if args.rehearse and mode.compile:
        bench.speed.COMPILE_OPTIONS.update(backend="eager")  # dynamo's tracing, without inductor's minutes on a CPU
    size = args.size
    ns = argparse.Namespace(
        height=size["height"],
        width=size["width"],
        frames=size["frames"],
        rank=size["rank"],
        bf16=True,
        smoke=False,
        decode_each_step=False,
        configs=configs,
    )
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    with tempfile.TemporaryDirectory(prefix="gpu-bench-") as tmp:
        clips, fingerprint = bench.write_clips(Path(tmp) / "data", 1, ns.frames, ns.height, ns.width)
        pipe = bench.build_full_pipeline(device, torch.bfloat16, configs)
        scales = bench.cosmos.vae_scale_factors(pipe.vae)
        flops = dit_flops(pipe.transformer.config, ns.frames, ns.height, ns.width, ns.rank, scales)
        runner = bench.Runner(mode, ns, pipe, clips, fingerprint, device, Path(tmp) / "cache")
        for k in range(args.warmup + args.steps):
            runner.step(record=k >= args.warmup)
        result = runner.result(flops["train"], peak_flops(device))
    estimate = memory.training_estimate(replace(runner.cfg, model=size["profile"]), cache_complete=True)
    result.update(estimate_gib=estimate.total_gib, estimate_parts_gib=estimate.as_dict()["parts"])
    emit(args, "train", result=result, flops=flops, peak_flops=peak_flops(device))
    peak = result.get("peak_allocated_gib")
    print(
        f"gpu_bench: {mode.name}: {result['s_per_step']:.3f} s/step, peak {peak if peak is None else round(peak, 2)} "
        f"GiB, estimate {estimate.total_gib:.2f} GiB",
        file=sys.stderr,
        flush=True,
    )
    del runner, pipe
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def generate(args) -> int:
    import torch

    from bench import bench
    from trainer import memory_modes
    from trainer.spec import memory
    from trainer.spec.generate_settings import GenerateSettings

    device, configs, size = device_of(args), configs_folder(args), args.generation_size
    pipe = bench.build_full_pipeline(device, torch.bfloat16, configs)
    for mode in ("full", "offload"):  # full first: offload moves the weights to the CPU
        memory_modes.apply(pipe, mode, device)
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        frames = pipe(
            prompt=bench.PROMPT,
            height=size["height"],
            width=size["width"],
            num_frames=size["frames"],
            num_inference_steps=args.steps,
            guidance_scale=7.0,
            output_type="np",
            generator=torch.Generator().manual_seed(0),
        ).frames
        if device.type == "cuda":
            torch.cuda.synchronize()
        settings = GenerateSettings(
            model=args.size["profile"], height=size["height"], width=size["width"], num_frames=size["frames"]
        )
        estimate = memory.generation_estimate(replace(settings, precision="bf16", memory=mode), mode)
        result = {
            "memory": mode,
            "seconds": time.perf_counter() - t0,
            "steps": args.steps,
            "cfg": 7.0,
            "frames": int(frames[0].shape[0]),
            "height": size["height"],
            "width": size["width"],
            "estimate_gib": estimate.total_gib,
        }
        if device.type == "cuda":
            result["peak_allocated_gib"] = torch.cuda.max_memory_allocated() / 2**30
        emit(args, "generate", result=result)
        print(f"gpu_bench: generation {mode}: {result}", file=sys.stderr, flush=True)
    return 0


def merge(args) -> int:
    """results-gpu.json and RESULTS.md from whatever stages finished."""
    from bench.report import write_results

    lines = [json.loads(line) for line in (args.out / STAGES_FILE).read_text().splitlines() if line.strip()]
    env_line = next((x for x in lines if x["stage"] == "env"), {})
    trains = [x for x in lines if x["stage"] == "train"]
    generations = [x["result"] for x in lines if x["stage"] == "generate"]
    tests = next((x for x in lines if x["stage"] == "pytest"), None)
    started = args.started or env_line.get("started") or time.time()
    size = args.size
    payload = {
        "section": "gpu",
        "rehearsal": args.rehearse,
        "device": env_line.get("device", "unknown"),
        "date": env_line.get("date", _today()),
        "versions": env_line.get("versions", {}),
        "command": "bash bench/gpu.sh" + (" --rehearse" if args.rehearse else ""),
        "size": {
            "height": size["height"],
            "width": size["width"],
            "frames": size["frames"],
            "batch": 1,
            "rank": size["rank"],
            "precision": "bf16",
        },
        "flops": trains[0]["flops"] if trains else env_line.get("flops"),
        "peak_flops": trains[0]["peak_flops"] if trains else None,
        "modes": [x["result"] for x in trains],
        "generation": None,  # bench.py's one timed generation; here each memory mode's is in generation_modes
        "generation_modes": generations,
        "pytest_gpu": tests,
        "bench_seconds": time.time() - started,
    }
    path = write_results(args.out, payload)
    print(f"gpu_bench: wrote {args.out / 'results-gpu.json'} and {path}", file=sys.stderr)
    return 0


def _flops(args) -> dict:
    from bench.flops import dit_flops

    folder = configs_folder(args)
    config = json.loads((folder / "transformer.json").read_text())
    vae = json.loads((folder / "vae.json").read_text())
    scales = (vae["scale_factor_temporal"], vae["scale_factor_spatial"])
    size = args.size
    return dit_flops(config, size["frames"], size["height"], size["width"], size["rank"], scales)


def _versions() -> dict:
    import importlib.metadata as metadata

    out = {"python": platform.python_version()}
    for name in ("torch", "diffusers", "transformers", "peft", "accelerate", "imageio-ffmpeg"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    import torch

    out["cuda"] = torch.version.cuda
    return out


def _today() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


STAGES = {"env": env, "train": train, "generate": generate, "merge": merge}

if __name__ == "__main__":
    arguments = parse_args()
    sys.exit(STAGES[arguments.stage](arguments))
