"""Training-step time, peak memory and MFU of Cosmos Predict 2.5 LoRA: the recipe's way against the studio's.

    python bench/bench.py            one GPU (H100/H200): full-size model, random weights, writes bench/RESULTS.md
    python bench/bench.py --smoke    CPU, the tiny model at 64x64x17 (CI): writes the CPU section

The GPU run builds the full-size architecture (bench/configs: the real transformer, Wan 2.1 VAE and
Qwen2.5-VL-7B configs) with random weights directly on the GPU (nothing is downloaded) and measures, in one run,
at 432x768, 93 frames, batch 1, LoRA rank 32, bf16:

    reference  what the recipe does: VAE and text encoder on the GPU and run every step, every block
               recomputed in the backward pass, plain SDPA, AdamW (foreach), torch.cuda.empty_cache() each step
    studio     the trainer's best settings: latents and projected prompt embeddings from the cache (VAE and text
               encoder off the GPU), selective checkpointing, the auto attention backend, compiled blocks,
               fused AdamW

then the seconds to generate one 93-frame video with 36 steps and CFG. Both modes use the same seeded weights
and the same noise, so their losses agree up to bf16 rounding (printed as a sanity check).

Clips are decoded once before timing in the GPU run (the recipe decodes in DataLoader workers, off the step's
path); the smoke's uncached modes use the trainer's LiveBatches, which decodes every step as a real run does.
The smoke interleaves its modes step by step so that load from other processes affects each mode alike.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from bench.flops import dit_flops, peak_flops  # noqa: E402
from bench.inputs import (  # noqa: E402
    CONFIGS,
    PROMPT,
    PreloadedLiveBatches,
    build_full_pipeline,
    configs_digest,
    write_clips,
)
from bench.modes import MODES, Mode, train_config  # noqa: E402
from bench.provenance import device_name, now, versions  # noqa: E402
from bench.report import write_results  # noqa: E402
from trainer import adapters, cache, cosmos, speed  # noqa: E402
from trainer.batches import LiveBatches  # noqa: E402
from trainer.data_plan import step_generator  # noqa: E402
from trainer.spec.video_shape import RECIPE_SIZE, TINY_SIZE  # noqa: E402


class Runner:
    """One mode's model, optimizer and batch source; `step()` is one timed optimizer step."""

    def __init__(self, mode: Mode, args, pipe, clips, fingerprint, device, cache_root: Path):
        self.mode, self.pipe, self.device, self.clips = mode, pipe, device, clips
        _, self.spatial_scale = cosmos.vae_scale_factors(pipe.vae)
        self.cfg = cfg = train_config(args, mode)
        self.bf16 = args.bf16
        self.info: dict = {"mode": mode.name}
        torch.manual_seed(0)
        adapters.attach(pipe.transformer, cfg)
        self.info.update(speed.apply(pipe.transformer, cfg, device))
        self.backend = self.info["attention"]
        self.info["settings"] = mode.describe(device, self.backend)
        if mode.cache:
            self.batches = self._cached(args, fingerprint, cache_root)
        elif args.decode_each_step:
            self.batches = LiveBatches(cfg, pipe, clips, device)
        else:
            self.batches = PreloadedLiveBatches(cfg, pipe, clips, device)
        pipe.transformer.to(device)
        self.params = adapters.trainable_parameters(pipe.transformer)
        self.optimizer = speed.make_optimizer(self.params, cfg, device)
        self.times: list[float] = []
        self.losses: list[float] = []
        self.index = 0
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()

    def _cached(self, args, fingerprint, cache_root):
        identity = f"bench-random-seed0-{configs_digest(args.configs)}" if not args.smoke else None
        latent_cache = cache.LatentCache(
            self.cfg, self.pipe, self.clips, fingerprint, root=cache_root, identity=identity
        )
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        report = latent_cache.build(self.pipe, self.device, progress=False)
        if self.device.type == "cuda":
            self.info["cache_build_peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
        cache.release_encoders(self.pipe)
        self.pipe.transformer.crossattn_proj = cache.PromptTail(self.pipe.transformer.crossattn_proj)
        windows = [p for w in latent_cache.windows for _, p in w]
        self.info.update(
            cache_build_s=report.seconds,
            cache_items=report.total,
            latent_bytes=windows[0].stat().st_size,
            prompt_bytes=next(iter(latent_cache.prompts.values())).stat().st_size,
        )
        return latent_cache.batches(self.pipe, self.device)

    def step(self, record: bool) -> None:
        cfg, device = self.cfg, self.device
        speed.set_attention_backend(self.pipe.transformer, self.backend)  # the dispatcher's backend is global
        _sync(device)
        t0 = time.perf_counter()
        i, self.index = self.index, self.index + 1
        clean, embeds = self.batches.get([i % len(self.clips)], i // len(self.clips))
        draw = cosmos.draw_flow_batch(
            clean.shape, cfg.conditional_frames, cfg.cfg_dropout, step_generator(cfg.seed, i + 1, 0, 0)
        )
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.bf16):
            model, timestep = self.pipe.transformer, cfg.conditional_frame_timestep
            loss = cosmos.flow_matching_loss(model, clean, embeds, draw, timestep, spatial_scale=self.spatial_scale)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.mode.empty_cache and device.type == "cuda":
            torch.cuda.empty_cache()
        value = loss.item()
        _sync(device)
        seconds = time.perf_counter() - t0
        if record:
            self.times.append(seconds)
            self.losses.append(value)
        else:
            self.info.setdefault("warmup_s", []).append(round(seconds, 3))

    def result(self, flops: float, peak: float | None) -> dict:
        median = statistics.median(self.times)
        out = {
            **self.info,
            "s_per_step": median,
            "steps": len(self.times),
            "min_s": min(self.times),
            "max_s": max(self.times),
            "losses": self.losses,
            "model_tflop_per_step": flops / 1e12,
            "mfu": flops / median / peak if peak else None,
        }
        if self.device.type == "cuda":
            out["peak_allocated_gib"] = torch.cuda.max_memory_allocated() / 2**30
            out["peak_reserved_gib"] = torch.cuda.max_memory_reserved() / 2**30
        return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


# --------------------------------------------------------------------------------------------- generation
@torch.no_grad()
def generate_seconds(pipe, args, device: torch.device) -> dict:
    """Seconds for one video (args.frames frames, args.gen_steps steps, CFG 7) after a 2-step warm-up."""
    cache.restore_projection(pipe.transformer)
    pipe.transformer.eval()
    pipe.vae.to(device)
    pipe.text_encoder.to(device)
    kwargs = dict(
        prompt=PROMPT,
        height=args.height,
        width=args.width,
        num_frames=args.frames,
        guidance_scale=7.0,
        output_type="np",
    )
    pipe(num_inference_steps=2, generator=torch.Generator().manual_seed(0), **kwargs)  # compile, allocate
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    _sync(device)
    t0 = time.perf_counter()
    frames = pipe(num_inference_steps=args.gen_steps, generator=torch.Generator().manual_seed(0), **kwargs).frames
    _sync(device)
    out = {"seconds": time.perf_counter() - t0, "steps": args.gen_steps, "cfg": 7.0, "frames": int(frames[0].shape[0])}
    if device.type == "cuda":
        out["peak_allocated_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return out


# --------------------------------------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="CPU, tiny model, small size (what CI runs)")
    p.add_argument(
        "--modes",
        help="comma-separated modes to run (default: reference,studio on GPU; "
        "studio-uncached,studio in the smoke). Known: " + ", ".join(MODES),
    )
    p.add_argument("--steps", type=int, help="measured steps per mode (default 10)")
    p.add_argument("--warmup", type=int, help="untimed steps per mode first (default 3 on GPU, 1 in the smoke)")
    p.add_argument("--height", type=int)
    p.add_argument("--width", type=int)
    p.add_argument("--frames", type=int)
    p.add_argument("--rank", type=int, default=32)
    p.add_argument("--gen-steps", type=int, default=36)
    p.add_argument("--no-generate", dest="generate", action="store_false", help="skip the generation timing")
    p.add_argument("--peak-tflops", type=float, help="the device's dense bf16 peak, when bench/flops.py lacks it")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent, help="folder for RESULTS.md")
    p.add_argument("--device", default="cuda", help="cuda; cpu only for a dry run of the GPU path with --configs")
    p.add_argument("--configs", type=Path, default=CONFIGS, help="component configs (default: the real ones)")
    args = p.parse_args(argv)
    args.argv = [a for a in (sys.argv[1:] if argv is None else argv) if a]
    small = args.smoke
    size = TINY_SIZE if small else RECIPE_SIZE
    args.height = args.height or size.height
    args.width = args.width or size.width
    args.frames = args.frames or size.num_frames
    args.steps = args.steps or 10
    args.warmup = args.warmup if args.warmup is not None else (1 if small else 3)
    args.modes = (args.modes or ("studio-uncached,studio" if small else "reference,studio")).split(",")
    unknown = [m for m in args.modes if m not in MODES]
    if unknown:
        p.error(f"--modes: unknown mode(s) {', '.join(unknown)}; known: {', '.join(MODES)}")
    if not small and args.device != "cuda" and args.out == p.get_default("out"):
        p.error("--device cpu is a dry run of the GPU path: give --out a scratch folder, not bench/")
    args.bf16 = not small
    args.decode_each_step = small
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    device = torch.device("cpu" if args.smoke else args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("bench: no CUDA GPU here; run `python bench/bench.py --smoke` for the CPU check.", file=sys.stderr)
        return 2
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    dtype = torch.bfloat16 if args.bf16 else torch.float32
    modes = [MODES[m] for m in args.modes]
    if args.smoke:
        modes = [replace(m, compile=False) for m in modes]  # inductor on 2 shared CPU cores takes minutes
    with tempfile.TemporaryDirectory(prefix="cosmos-bench-") as tmp:
        clips, fingerprint = write_clips(
            Path(tmp) / "data", 2 if args.smoke else 1, args.frames, args.height, args.width
        )

        def new_pipe():
            if args.smoke:
                return cosmos.load_pipeline(cosmos.TINY_MODEL, dtype=dtype)
            return build_full_pipeline(device, dtype, args.configs)

        t0 = time.perf_counter()
        runners, results, pipe = [], [], None
        for mode in modes:
            pipe = new_pipe()
            tc = pipe.transformer.config
            flops = dit_flops(tc, args.frames, args.height, args.width, args.rank, cosmos.vae_scale_factors(pipe.vae))
            runner = Runner(mode, args, pipe, clips, fingerprint, device, Path(tmp) / "cache")
            print(f"bench: {mode.name}: {runner.info}", file=sys.stderr, flush=True)
            if args.smoke:
                runners.append(runner)  # interleaved below
                continue
            for k in range(args.warmup + args.steps):
                runner.step(record=k >= args.warmup)
            results.append(runner.result(flops["train"], peak_flops(device, args.peak_tflops)))
            print(f"bench: {mode.name}: {results[-1]['s_per_step']:.3f} s/step", file=sys.stderr, flush=True)
            if mode is not modes[-1]:
                del runner, pipe
                _free()
        for k in range(args.warmup + args.steps if runners else 0):
            for runner in runners:
                runner.step(record=k >= args.warmup)
        results += [r.result(flops["train"], None) for r in runners]
        generation = generate_seconds(pipe, args, device) if args.generate else None
        total_s = time.perf_counter() - t0
    payload = {
        "section": "cpu" if args.smoke else "gpu",
        "device": device_name(device),
        "date": now(),
        "versions": versions(),
        "command": " ".join(["python bench/bench.py", *args.argv]),
        "size": {
            "height": args.height,
            "width": args.width,
            "frames": args.frames,
            "batch": 1,
            "rank": args.rank,
            "precision": "bf16" if args.bf16 else "fp32",
        },
        "flops": flops,
        "peak_flops": peak_flops(device, args.peak_tflops),
        "modes": results,
        "generation": generation,
        "bench_seconds": total_s,
    }
    path = write_results(args.out, payload)
    print(f"bench: wrote {path}", file=sys.stderr)
    return 0


def _free() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


if __name__ == "__main__":
    sys.exit(main())
