"""`.env`: the settings and secrets file that docker compose and systemd also read.

A plain `monitor run` reads `.env` from its working directory when there is one, so SMTP
logins and webhook secrets work the same with or without docker or systemd. A variable that is
already set in the environment always wins: the file fills gaps, it never overrides.

The format is the common subset: `NAME=value` lines, blank lines and `#` comments, an optional
`export ` in front, and values optionally in quotes: 'single' (taken as written) or "double"
(with \\n, \\t, \\" and \\\\ escapes); a quoted value may span lines. An unquoted value ends at
a ` #` comment and loses surrounding spaces. Nothing is expanded (`$HOME` stays as written). A
line that is none of these stops `monitor run` with the file and line, so a typo cannot quietly
leave a secret unset.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import MutableMapping
from pathlib import Path

from monitor.errors import ConfigError

__all__ = ["load_env_file", "read_env_file"]

_LINE = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)", re.DOTALL)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}
HINT = "write NAME=value, or start the line with # to make it a comment"


def read_env_file(path: Path) -> dict[str, str]:
    """The variables `path` sets, in order. Raises ConfigError naming file:line."""
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    found: dict[str, str] = {}
    index = 0
    while index < len(lines):
        number, line = index + 1, lines[index]
        index += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.fullmatch(line)
        if match is None:
            raise ConfigError(_not_a_setting(line), path=str(path), line=number, hint=HINT)
        name, rest = match.groups()
        quote = rest[:1] if rest[:1] in ("'", '"') else ""
        if not quote:
            found[name] = re.split(r"\s#", rest, maxsplit=1)[0].strip()
            continue
        # A quoted value ends at its closing quote, maybe lines later (a PEM key).
        text = rest[1:]
        while (end := _closing(text, quote)) is None:
            if index >= len(lines):
                raise ConfigError(
                    f"the value of {name} opens a {quote} quote that is never closed",
                    path=str(path), line=number, hint=f"end the value with {quote}",
                )  # fmt: skip
            text += "\n" + lines[index]
            index += 1
        after = text[end + 1 :].strip()
        if after and not after.startswith("#"):
            raise ConfigError(
                f"unexpected {after!r} after the quoted value of {name}",
                path=str(path), line=number, hint="put comments after a #",
            )  # fmt: skip
        found[name] = _unescape(text[:end]) if quote == '"' else text[:end]
    return found


def _not_a_setting(line: str) -> str:
    # Never quote the value: the line may hold a secret with its '=' missing.
    if "=" not in line:
        return "not a NAME=value line (it has no '=')"
    name = line.split("=", 1)[0].strip()
    return f"not a NAME=value line: {name!r} is not a variable name (A-Z, 0-9, _)"


def _closing(text: str, quote: str) -> int | None:
    """Index of the quote that closes `text` (escaped ones skipped in double quotes)."""
    position = 0
    while position < len(text):
        char = text[position]
        if char == "\\" and quote == '"':
            position += 2
            continue
        if char == quote:
            return position
        position += 1
    return None


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), text)


def load_env_file(
    path: Path = Path(".env"), environ: MutableMapping[str, str] | None = None
) -> list[str]:
    """Set the variables of `path` that are not set yet; the names set. No file, no change."""
    env = os.environ if environ is None else environ
    try:
        values = read_env_file(path)
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise ConfigError(
            f"cannot read it: {reason}", path=str(path), hint="fix it or remove it"
        ) from error
    added = [name for name in values if name not in env]
    for name in added:
        env[name] = values[name]
    if "TZ" in added and env is os.environ:
        time.tzset()  # log timestamps follow TZ from the file, as under systemd
    return added
