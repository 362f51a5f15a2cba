"""`python -m trainer <command>`: the trainer's command line.

Each command lives in its own module exposing `add_arguments(parser)` and `main(args) -> int`; modules are
imported only when their command runs, so `check-data` does not pay for importing torch.
Exit codes: 0 success, 1 the work failed (bad data, failed run), 2 a usage error.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "build-tiny": (
        "trainer.cli.build_tiny",
        "Write the embedded tiny pipeline (or --random weights) to a diffusers folder.",
    ),
    "check-data": ("trainer.cli.check_data", "Validate a dataset and print a per-clip report."),
    "caption": ("trainer.cli.caption", "Write the missing captions of a dataset with a vision-language model."),
    "import-data": ("trainer.cli.import_data", "Copy a dataset into the canonical videos/ + metas/ layout."),
    "make-sample-data": ("trainer.cli.make_sample_data", "Write the procedural sample robot dataset."),
    "train": ("trainer.cli.train", "Train a LoRA/DoRA adapter from a config file."),
    "generate": ("trainer.cli.generate", "Render the base model and adapters from the same noise, side by side."),
    "evaluate": ("trainer.cli.evaluate", "Score the base model and adapters on held-out clips."),
    "pretrain-tiny": ("trainer.cli.pretrain_tiny", "Pre-train the embedded tiny base on the shapes world."),
    "export": ("trainer.cli.export", "Write the base transformer with an adapter fused in (no peft needed)."),
    "publish": ("trainer.cli.publish", "Upload an adapter and its model card to the Hugging Face Hub."),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 on usage errors; keep that, say it plainly
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m trainer", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    argv = sys.argv[1:] if argv is None else argv
    wanted = argv[0] if argv and argv[0] in COMMANDS else None
    modules = {}
    for name, (module_name, help_text) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        if name == wanted:  # only the chosen command's module is imported
            modules[name] = importlib.import_module(module_name)
            modules[name].add_arguments(cmd)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    return int(modules[args.command].main(args))


if __name__ == "__main__":
    sys.exit(main())
