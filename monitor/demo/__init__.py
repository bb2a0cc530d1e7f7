"""`monitor demo`: bundled outlets served on loopback, polled, matched, and digests delivered to a
local SMTP server and webhook receiver it starts, with the surges that the week's news sets
off. Uses the same pipeline as `monitor run`.

Entry point: `run_demo`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from monitor.lazy import exports

if TYPE_CHECKING:
    from monitor.demo.demo import run_demo

__all__ = ["run_demo"]
__getattr__ = exports(__name__, {"run_demo": "demo"})
