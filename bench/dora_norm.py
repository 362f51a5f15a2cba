"""What peft's per-forward DoRA weight norm costs in a training step of the real transformer, layer by layer.

    python bench/dora_norm.py [--tokens 48] [--rank 8] [--repeats 3]

For each adapter-targeted Linear shape of one real Cosmos transformer block (bench/configs/transformer.json:
self-attention q/k/v/out 2048->2048, cross-attention q/out 2048->2048 and k/v 1024->2048, feed-forward
2048->8192 and 8192->2048), a bf16 Linear gets a rank-r LoRA or DoRA adapter (peft, fp32 adapter weights as the
trainer keeps them) and the median seconds of forward+backward under bf16 autocast is measured at `--tokens`
tokens, plus the seconds of the DoRA weight norm alone (`get_lora_weight` + `get_weight_norm`, what peft redoes on
every forward). Per step: x28 blocks; with gradient checkpointing the forward (and the norm) runs twice.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model

CONFIG = json.loads((Path(__file__).resolve().parent / "configs" / "transformer.json").read_text())
HIDDEN = CONFIG["num_attention_heads"] * CONFIG["attention_head_dim"]
SHAPES = {  # (in, out): how many per block
    (HIDDEN, HIDDEN): 6,  # self-attention q, k, v, out; cross-attention q, out
    (CONFIG["text_embed_dim"], HIDDEN): 2,  # cross-attention k, v (on the 1024-wide projected prompt)
    (HIDDEN, int(HIDDEN * CONFIG["mlp_ratio"])): 1,
    (int(HIDDEN * CONFIG["mlp_ratio"]), HIDDEN): 1,
}


def _timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(shape: tuple[int, int], dora: bool, tokens: int, rank: int, repeats: int) -> dict:
    torch.manual_seed(0)
    base = torch.nn.Sequential(torch.nn.Linear(*shape, dtype=torch.bfloat16)).requires_grad_(False)
    model = get_peft_model(base, LoraConfig(r=rank, lora_alpha=rank, target_modules=["0"], use_dora=dora))
    for p in model.parameters():
        if p.requires_grad:
            p.data = p.data.float()
    x = torch.randn(1, tokens, shape[0], dtype=torch.bfloat16)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            model(x).float().sum().backward()

    out = {"step_s": _timed(step, repeats)}
    if dora:
        layer = model.base_model.model[0]
        dora_layer = layer.lora_magnitude_vector["default"]

        def norm():
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
                w = dora_layer.get_lora_weight(lora_A=layer.lora_A["default"], lora_B=layer.lora_B["default"])
                dora_layer.get_weight_norm(layer.base_layer.weight.to(x.dtype), w.to(x.dtype), 1.0)

        out["norm_s"] = _timed(norm, repeats)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=48, help="DiT tokens (64x64x9: 3 latent frames x 4 x 4 patches)")
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    blocks = CONFIG["num_layers"]
    totals = {"lora": 0.0, "dora": 0.0, "norm": 0.0}
    for shape, count in SHAPES.items():
        lora = measure(shape, False, args.tokens, args.rank, args.repeats)
        dora = measure(shape, True, args.tokens, args.rank, args.repeats)
        totals["lora"] += count * blocks * lora["step_s"]
        totals["dora"] += count * blocks * dora["step_s"]
        totals["norm"] += count * blocks * dora["norm_s"]
        print(
            f"{shape[0]}->{shape[1]} x{count * blocks}: LoRA fwd+bwd {lora['step_s'] * 1e3:.1f} ms, DoRA fwd+bwd "
            f"{dora['step_s'] * 1e3:.1f} ms, DoRA norm alone {dora['norm_s'] * 1e3:.1f} ms",
            file=sys.stderr,
        )
    result = {
        "tokens": args.tokens,
        "rank": args.rank,
        "threads": torch.get_num_threads(),
        "adapted_layers_fwd_bwd_s": {"lora": totals["lora"], "dora": totals["dora"]},
        "dora_norm_per_forward_s": totals["norm"],
        "dora_over_lora_adapted_layers": totals["dora"] / totals["lora"],
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
