"""One module per `python -m trainer` command: `add_arguments(parser)` and `main(args) -> int`."""
