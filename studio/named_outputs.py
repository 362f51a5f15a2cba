"""Gradio handler outputs by name instead of by position.

A handler returns a dict {output name: value} (a name left out is not updated); `NamedOutputs` turns that into
the positional tuple Gradio wants, in the order the outputs were declared, and `read` turns an API result
(gradio_client returns a tuple) back into a dict. Nobody counts positions.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import gradio as gr


class NamedOutputs:
    def __init__(self, **components: gr.components.Component):
        self.names = tuple(components)
        self.components = list(components.values())

    def wrap(self, handler: Callable[..., dict[str, Any]]) -> Callable[..., tuple]:
        """`handler`, returning its dict as the declared outputs' tuple (gr.skip() for names it left out)."""

        @functools.wraps(handler)
        def positional(*args: Any) -> tuple:
            values = handler(*args)
            unknown = set(values) - set(self.names)
            if unknown:
                raise KeyError(f"{handler} returned outputs {sorted(unknown)} it does not declare")
            return tuple(values.get(name, gr.skip()) for name in self.names)

        return positional

    def read(self, result: tuple | list) -> dict[str, Any]:
        """An API caller's result as {output name: value}."""
        return dict(zip(self.names, result, strict=True))
