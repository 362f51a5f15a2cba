"""Cosmos LoRA Studio: `python app.py` serves the studio on http://127.0.0.1:7860.

The studio process never imports torch: training and generation run in child processes. The embedded tiny
model is the default, so it works offline with nothing downloaded. README "Deploying safely" says which flags
to use when others can reach it.
"""

from __future__ import annotations

import argparse
import atexit
import os

from studio.access import DEFAULT_MAX_DOWNLOAD_GB, Access, is_public
from studio.paths import local_folders_default
from studio.workspace import default_workspace, open_studio

PUBLIC_WORKSPACE_GB = 20.0  # the workspace quota of a public studio unless the owner sets one


def parse_auth(text: str | None) -> list[tuple[str, str]] | None:
    """`user:password[,user2:password2]` as Gradio's auth list; None when empty. ValueError says how to write it."""
    if not text:
        return None
    pairs = []
    for entry in text.split(","):
        user, sep, password = entry.strip().partition(":")
        if not sep or not user or not password:
            raise ValueError("--auth / STUDIO_AUTH must be user:password (several separated by commas)")
        pairs.append((user, password))
    return pairs


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0", "false")


def _env_list(name: str) -> list[str]:
    return [entry.strip() for entry in os.environ.get(name, "").split(",") if entry.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # GRADIO_SERVER_NAME/PORT are how hosted platforms (Hugging Face Spaces, the Dockerfile) say where to listen.
    parser.add_argument(
        "--host",
        default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        help="address to listen on (0.0.0.0 for every interface); default 127.0.0.1",
    )
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--share", action="store_true", help="also serve through a public gradio.live link")
    parser.add_argument(
        "--workspace",
        default=default_workspace(),
        help="folder for runs, datasets, adapters, generations and exports; default ./workspace, "
        "or /data/workspace on a Hugging Face Space with persistent storage",
    )
    parser.add_argument(
        "--auth",
        default=os.environ.get("STUDIO_AUTH"),
        metavar="USER:PASSWORD",
        help="require sign-in (several as u1:p1,u2:p2); default: $STUDIO_AUTH, else none",
    )
    # A Space runs `python app.py` without arguments: its variables STUDIO_AUTH and STUDIO_READ_ONLY stand in.
    parser.add_argument(
        "--read-only",
        action="store_true",
        default=_env_flag("STUDIO_READ_ONLY"),
        help="browse, compare and download only: no training, import, caption "
        "edit or delete; default: $STUDIO_READ_ONLY",
    )
    local = parser.add_mutually_exclusive_group()
    local.add_argument(
        "--allow-local-folders",
        dest="local_folders",
        action="store_true",
        default=None,
        help="let requests read server folders outside the workspace (datasets, models); default "
        "on only on 127.0.0.1 outside a Space",
    )
    local.add_argument("--no-local-folders", dest="local_folders", action="store_false")
    parser.add_argument("--max-upload-mb", type=float, default=500.0, help="largest file one upload may hold")
    parser.add_argument(
        "--max-workspace-gb",
        type=float,
        default=float(os.environ["STUDIO_MAX_WORKSPACE_GB"]) if os.environ.get("STUDIO_MAX_WORKSPACE_GB") else None,
        metavar="GB",
        help="a workspace holding this much takes no new imports, runs or generations (deleting "
        f"still works); 0: no limit; default: $STUDIO_MAX_WORKSPACE_GB, else {PUBLIC_WORKSPACE_GB:g} on a public "
        "studio (a Space, a --host other than loopback, --share) and no limit on 127.0.0.1",
    )
    _access_arguments(parser)
    parser.add_argument(
        "--generation-timeout",
        type=float,
        default=1800.0,
        metavar="SECONDS",
        help="a generation running longer is stopped",
    )
    parser.add_argument(
        "--keep-generations-days",
        type=float,
        default=14.0,
        metavar="DAYS",
        help="generations, uploads and exports older than this are removed (at start and hourly); 0 keeps all",
    )
    args = parser.parse_args(argv)
    try:
        args.auth = parse_auth(args.auth)
    except ValueError as exc:
        parser.error(str(exc))
    if args.local_folders is None:
        args.local_folders = local_folders_default(args.host, dict(os.environ)) and not args.share
    public = is_public(args.host, dict(os.environ), args.share)
    if args.max_workspace_gb is None:
        args.max_workspace_gb = PUBLIC_WORKSPACE_GB if public else 0
    args.access = Access(
        public=public,
        signed_in=bool(args.auth),
        models=tuple(args.allow_model),
        datasets=tuple(args.allow_dataset),
        max_download_gb=args.max_download_gb,
        guardrail_optional=args.allow_guardrail_off,
    )
    return args


def _access_arguments(parser: argparse.ArgumentParser) -> None:
    """Who may do what on a public studio (studio.access); each also a Space variable."""
    parser.add_argument(
        "--allow-model",
        action="append",
        default=_env_list("STUDIO_ALLOW_MODELS"),
        metavar="ID[@REVISION]",
        help="a Hub model visitors may use besides the tiny model, NVIDIA's at its pinned revision and what is "
        "cached (repeat it; $STUDIO_ALLOW_MODELS, comma-separated)",
    )
    parser.add_argument(
        "--allow-dataset",
        action="append",
        default=_env_list("STUDIO_ALLOW_DATASETS"),
        metavar="ID",
        help="a Hub dataset visitors may import besides what is cached (repeat it; $STUDIO_ALLOW_DATASETS)",
    )
    parser.add_argument(
        "--max-download-gb",
        type=float,
        default=float(os.environ.get("STUDIO_MAX_DOWNLOAD_GB") or DEFAULT_MAX_DOWNLOAD_GB),
        metavar="GB",
        help="largest Hub model or dataset beyond the allow-list a signed-in user may have downloaded on a "
        f"public studio; default: $STUDIO_MAX_DOWNLOAD_GB, else {DEFAULT_MAX_DOWNLOAD_GB:g}",
    )
    parser.add_argument(
        "--allow-guardrail-off",
        action="store_true",
        default=_env_flag("STUDIO_ALLOW_GUARDRAIL_OFF"),
        help="let callers of a public studio turn NVIDIA's guardrail off (the licence decision is then yours "
        "for every visitor); default: $STUDIO_ALLOW_GUARDRAIL_OFF, else off",
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.access.withhold_token()  # before any child starts: a visitor's downloads never carry the owner's token
    # Before gradio is imported: it sets GRADIO_TEMP_DIR.
    studio = open_studio(
        args.workspace,
        read_only=args.read_only,
        allow_local_folders=args.local_folders,
        max_gb=args.max_workspace_gb or None,
        access=args.access,
    )
    studio.generation.timeout = args.generation_timeout
    studio.keep_days = args.keep_generations_days
    atexit.register(studio.close)  # the generation worker; a training run keeps going and is re-attached
    from studio.ui import launch

    launch(studio, args.host, args.port, args.share, auth=args.auth, max_upload_mb=args.max_upload_mb)


if __name__ == "__main__":
    main()
