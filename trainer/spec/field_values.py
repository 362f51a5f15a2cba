"""A raw JSON or TOML value checked against a config field's type: converted only where nothing is lost (1.0 to
1, 2 to 2.0), otherwise a TypeError or ValueError whose text completes "<field> ..." for the user."""

from __future__ import annotations

from typing import Any, Literal, get_args, get_origin


def coerce(value: Any, typ: Any) -> Any:
    """Check a raw JSON/TOML value against a field type, converting only where it loses nothing."""
    if get_origin(typ) is Literal:
        if value not in get_args(typ):
            raise ValueError(f"must be one of {', '.join(map(repr, get_args(typ)))} (got {value!r})")
        return value
    if typ is bool:
        if not isinstance(value, bool):
            raise TypeError(f"must be true or false (got {value!r})")
        return value
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise TypeError(f"must be a whole number (got {value!r})")
        return value
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"must be a number (got {value!r})")
        return float(value)
    if typ is str:
        if not isinstance(value, str):
            raise TypeError(f"must be text (got {value!r})")
        return value
    if typ == list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise TypeError(f"must be a list of names (got {value!r})")
        return list(value)
    if typ == dict[int, float]:
        if not isinstance(value, dict):
            raise TypeError(f"must be a table like {{1 = 0.5, 2 = 0.5}} (got {value!r})")
        try:
            return {int(k): float(v) for k, v in value.items()}
        except (TypeError, ValueError):
            raise TypeError(f"keys must be frame counts and values probabilities (got {value!r})") from None
    if typ == list[dict[str, str]]:
        tables = isinstance(value, list) and all(isinstance(v, dict) for v in value)
        if not tables or not all(isinstance(x, str) for v in value for x in v.values()):
            raise TypeError(f'must be a list of {{image = "...", prompt = "..."}} tables (got {value!r})')
        return [dict(v) for v in value]
    raise TypeError(f"unsupported type {typ}")  # pragma: no cover - a new field type needs a branch above
