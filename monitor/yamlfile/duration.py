"""Durations as people write them in the rules files and on the command line (`10m`, `1h30m`).

Their own module, free of YAML: `monitor --help`, `status` and `items search` show and read
durations without loading the YAML parser (see the start-up test in tests/cli).
"""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_DURATION_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> timedelta:
    """`"90s"`, `"10m"`, `"1h"`, `"7d"`, `"2w"`, or a sum such as `"1h30m"`; ValueError if not."""
    compact = text.strip()
    if not compact or _DURATION_RE.sub("", compact):
        raise ValueError(
            f"bad duration {text!r}: write a number and a unit (s, m, h, d or w), e.g. 10m or 7d"
        )
    seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_RE.findall(compact))
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest exact form that `parse_duration` reads back: 600 s -> `"10m"`."""
    seconds = value.total_seconds()
    for unit, size in _DURATION_UNITS.items():
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
