"""Gradio handler outputs by name instead of by position.

A handler returns a dict {output name: value} (a name left out is not updated); `NamedOutputs` turns that into
the positional tuple Gradio wants, in the order the outputs were declared. Nobody counts positions. Inputs by name need no helper:
Gradio's `inputs_kwargs={name: component}` passes them as keyword arguments.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr


class NamedOutputs:
    def __init__(self, **components: gr.components.Component):
        self.names = tuple(components)
        self.components = list(components.values())

    def wrap(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        """`handler`, returning its dict as the declared outputs' tuple (gr.skip() for names it left out); a
        generator handler stays a generator (Gradio streams it), each update converted the same way."""

        if inspect.isgeneratorfunction(getattr(handler, "func", handler)):  # a functools.partial too

            @functools.wraps(handler)
            def stream(*args: Any, **kwargs: Any) -> Iterator[tuple]:
                for values in handler(*args, **kwargs):
                    yield self._positional(handler, values)

            return stream

        @functools.wraps(handler)
        def positional(*args: Any, **kwargs: Any) -> tuple:
            return self._positional(handler, handler(*args, **kwargs))

        return positional

    def _positional(self, handler: Callable, values: dict[str, Any]) -> tuple:
        unknown = set(values) - set(self.names)
        if unknown:
            raise KeyError(f"{handler} returned outputs {sorted(unknown)} it does not declare")
        return tuple(values.get(name, gr.skip()) for name in self.names)


def bind(fn: Callable[..., Any], first: Any) -> Callable[..., Any]:
    """`fn` with its first parameter (the studio, or tab_evaluate's Page) bound to `first`, as a plain (generator)
    function: Gradio finds a gr.Request parameter by the type hints of a function, which a functools.partial does
    not expose."""
    if inspect.isgeneratorfunction(fn):

        def bound(*args, **kwargs):
            yield from fn(first, *args, **kwargs)
    else:

        def bound(*args, **kwargs):
            return fn(first, *args, **kwargs)

    signature = inspect.signature(fn)
    bound.__signature__ = signature.replace(parameters=list(signature.parameters.values())[1:])
    name = next(iter(signature.parameters))
    bound.__annotations__ = {k: v for k, v in fn.__annotations__.items() if k != name}
    bound.__name__ = fn.__name__
    return bound
