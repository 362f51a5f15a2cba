"""`python -m trainer train --config FILE [--set KEY=VALUE ...] [--dry-run [--gpu-gb N]]`: one whole training run.

`--dry-run` validates the config and prints the predicted peak GPU memory by part, whether it fits the visible GPU
(or a card of N GB; without either, each common size) and the cheapest change that would make it fit; it loads no
model and trains nothing (trainer/spec/memory.py, docs/memory.md).

Exit 0 when the run finished or was stopped cleanly (status.json says which), 1 when it failed, 2 when the
config is invalid (every problem listed by field).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, type=Path, help="a JSON or TOML config file")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config key (VALUE is read as JSON when it parses, else as text)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the predicted peak GPU memory and whether it fits; train nothing"
    )
    parser.add_argument("--gpu-gb", type=float, help="with --dry-run: the card size to judge (16, 24, 48, 80 ...)")


def parse_overrides(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--set {pair!r}: write it as KEY=VALUE")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def main(args: argparse.Namespace) -> int:
    from trainer.spec.config import ConfigError, load_config
    from trainer.spec.run_folder import CONFIG_FILE

    try:
        overrides = parse_overrides(args.set)
        cfg = load_config(args.config, overrides)
    except (ConfigError, ValueError) as exc:
        print(f"train: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        return dry_run(cfg, args.gpu_gb)
    from trainer.train import run

    # Started by the studio (or again on a run folder's own config.json): that file already holds this config.
    same_file = args.config.resolve() == (cfg.run_dir / CONFIG_FILE).resolve()
    return run(cfg, config_written=same_file and not overrides)


def dry_run(cfg, card_gb: float | None) -> int:
    from trainer.spec import memory

    if memory.load_profile(cfg.model) is None and memory.stored_profile_path(cfg.model) is not None:
        from trainer.memory_profile import store_profile

        print(f"train: measuring the memory profile of {cfg.model} once (about a minute)", file=sys.stderr)
        store_profile(Path(cfg.model).expanduser())
    print("\n".join(memory.training_report(cfg, card_gb)))
    return 0
