"""Declared, registered peers (framework backends, runners): a name maps to "module:Class", imported
only when used, so a missing optional dependency of one peer never breaks the others."""

from __future__ import annotations

import importlib

from harness.core.errors import HarnessError


def registered_class(table: dict[str, str], name: str, kind: str) -> type:
    """The class registered under ``name`` in ``table``; KeyError naming the known ones."""
    try:
        module, cls = table[name].split(":")
    except KeyError:
        raise KeyError(f"unknown {kind} {name!r}; known: {', '.join(table)}") from None
    try:
        return getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as exc:
        # a plug-in's typo must read as one line naming the entry, not an import traceback
        raise HarnessError(f"{kind} {name!r} is registered as {table[name]!r}, which cannot be loaded: {exc}") from exc
