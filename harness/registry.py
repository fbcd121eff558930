"""Declared, registered peers (framework backends, runners): a name maps to "module:Class", imported
only when used, so a missing optional dependency of one peer never breaks the others."""

from __future__ import annotations

import importlib


def registered_class(table: dict[str, str], name: str, kind: str) -> type:
    """The class registered under ``name`` in ``table``; KeyError naming the known ones."""
    try:
        module, cls = table[name].split(":")
    except KeyError:
        raise KeyError(f"unknown {kind} {name!r}; known: {', '.join(table)}") from None
    return getattr(importlib.import_module(module), cls)
