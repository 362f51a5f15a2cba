"""`python -m trainer publish ADAPTER_DIR --repo owner/name [--private]`: the adapter and its model card on the Hub.

The token comes from HF_TOKEN or `hf auth login`; it is never printed. `--dry-run DIR` writes the exact files
(README.md included) to DIR and uploads nothing. Exit 0 with the repository URL printed, 1 when the upload
failed, 2 for a usage error (bad repo id, not an adapter folder, no token).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("adapter", type=Path, help="an adapter folder written by the trainer")
    parser.add_argument("--repo", required=True, help="the Hub model repository, owner/name (created if absent)")
    parser.add_argument("--private", action="store_true", help="create the repository private")
    parser.add_argument(
        "--evaluation",
        type=Path,
        default=None,
        help="`evaluate --json` output to show (default: evaluation.json in the adapter folder)",
    )
    parser.add_argument(
        "--video",
        type=Path,
        default=None,
        help="a comparison video to show (default: compare.mp4 in the adapter folder)",
    )
    parser.add_argument(
        "--dry-run",
        type=Path,
        default=None,
        metavar="DIR",
        help="write the files that would be uploaded to DIR; upload nothing",
    )


def main(args: argparse.Namespace) -> int:
    from trainer.publish import NoTokenError, PublishError, plan, publish, stage

    try:
        p = plan(args.adapter, args.repo, args.private, args.evaluation, args.video)
    except PublishError as exc:
        print(f"publish: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        stage(p, args.dry_run)
        print(f"would upload {', '.join(sorted([*p.files, 'README.md']))} to {p.url}; written to {args.dry_run}")
        return 0
    try:
        url = publish(p)
    except PublishError as exc:
        print(f"publish: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, NoTokenError) else 1
    print(url)
    return 0
