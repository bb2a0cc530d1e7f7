"""The `monitor` command: a thin face over the stage packages (click). Each command parses its
options, calls library functions, prints the result; errors from `monitor.errors` become one
line and a non-zero exit.

Entry point: `main` (the console script).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from monitor.lazy import exports

if TYPE_CHECKING:
    from monitor.cli.main import main

__all__ = ["main"]
__getattr__ = exports(__name__, {"main": "main"})
