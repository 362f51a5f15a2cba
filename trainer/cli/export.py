"""`python -m trainer export ADAPTER --merged OUT`: the base transformer with the adapter fused in.

Exit 0 with OUT written, 1 when the model cannot be loaded or the adapter cannot be fused, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("adapter", type=Path, help="an adapter folder (pytorch_lora_weights.safetensors + card)")
    parser.add_argument(
        "--merged", required=True, type=Path, metavar="OUT", help="folder to write (created; must be empty or absent)"
    )
    parser.add_argument(
        "--pipeline",
        action="store_true",
        help="write a whole pipeline folder (VAE, text encoder ...) instead of the transformer only",
    )
    parser.add_argument("--model", default=None, help="the base model (default: the one the adapter card names)")
    parser.add_argument("--revision", default=None, help="its Hub revision (default: the card's commit)")
    parser.add_argument("--scale", type=float, default=1.0, help="adapter strength fused in (default 1.0)")
    parser.add_argument(
        "--dtype",
        choices=("auto", "float32", "bfloat16", "float16"),
        default="auto",
        help="weights' precision; auto: float32 for the tiny model, bfloat16 otherwise",
    )


def main(args: argparse.Namespace) -> int:
    from trainer.cosmos import ModelError
    from trainer.export import export_merged

    try:
        out = export_merged(
            args.adapter,
            args.merged,
            model=args.model,
            revision=args.revision,
            scale=args.scale,
            dtype=args.dtype,
            whole_pipeline=args.pipeline,
        )
    except ValueError as exc:
        print(f"export: {exc}", file=sys.stderr)
        return 2
    except (ModelError, RuntimeError, OSError) as exc:
        print(f"export: {exc}", file=sys.stderr)
        return 1
    what = "pipeline" if args.pipeline else "transformer"
    print(f"merged {what} written to {out}")
    return 0
