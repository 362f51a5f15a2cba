"""`python -m trainer train --config FILE [--set KEY=VALUE ...]`: one whole training run.

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
    from trainer.train import run

    # Started by the studio (or again on a run folder's own config.json): that file already holds this config.
    same_file = args.config.resolve() == (cfg.run_dir / CONFIG_FILE).resolve()
    return run(cfg, config_written=same_file and not overrides)
