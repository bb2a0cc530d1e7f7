"""Package re-exports that load their module on first use (PEP 562).

A package's `__init__` names its public entry points; importing them eagerly would make
`import monitor.ingest.feeds` pull in httpx and feedparser, and every CLI command pay for the
whole pipeline at start. `exports()` returns a module `__getattr__` that imports on demand.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def exports(package: str, table: Mapping[str, str]) -> Callable[[str], object]:
    """`table` maps each public name to the module (relative to `package`) that defines it."""

    def __getattr__(name: str) -> object:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    return __getattr__
