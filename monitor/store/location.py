"""Where the database is: a SQLite file, or a PostgreSQL server named by a URL.

`--db` and `MONITOR_DB` take either, so everything between the command line and `Store` carries
a `DbLocation` rather than a `Path`. Its text (`str`, `repr`, and so every message and log line
that prints it) never holds the URL's password: only `target`, handed to `Store`, does.

Light on purpose: the command line imports it at start-up, before it knows whether it will
ever open the database; psycopg is imported only to check a URL (`url_problem`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

SCHEMES = ("postgresql://", "postgres://")
HIDDEN = "***"
# The password of a URL too broken for urlsplit (an unclosed `[`): scheme://user:PASSWORD@
_USERINFO = re.compile(r"^([a-z]+://[^:/@]*:)([^@]*)@", re.I)


def is_url(db: object) -> bool:
    """Whether `--db` names a PostgreSQL database rather than a SQLite file."""
    return str(db).startswith(SCHEMES)


def redacted(url: str) -> str:
    """The URL without its password (in the user part or a `password=` parameter)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL urlsplit reads: hide all that could be a password
        return _USERINFO.sub(rf"\g<1>{HIDDEN}@", url).split("?", 1)[0]
    if parts.password is not None:
        user = parts.username or ""
        host = parts.netloc.rsplit("@", 1)[1]
        parts = parts._replace(netloc=f"{user}:{HIDDEN}@{host}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(name == "password" for name, _ in query):
        hidden = [(n, HIDDEN if n == "password" else v) for n, v in query]
        parts = parts._replace(query=urlencode(hidden, safe="*"))
    return urlunsplit(parts)


def url_secrets(url: str) -> list[str]:
    """The password a URL carries, as written and as decoded: what a log must never show."""
    try:
        parts = urlsplit(url)
    except ValueError:
        broken = _USERINFO.match(url)
        return [broken.group(2)] if broken and broken.group(2) else []
    found = [parts.password or ""]
    found += [v for n, v in parse_qsl(parts.query) if n == "password"]
    if parts.password:
        found.append(unquote(parts.password))  # libpq decodes %xx before it sends it
    return [s for s in found if s]


def url_problem(url: str) -> str | None:
    """Why libpq would not take this URL (in its words, the password hidden), or None."""
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        urlsplit(url)
        conninfo_to_dict(url)
    except (ValueError, ProgrammingError) as error:
        # libpq may quote the whole URL back, password and all.
        text = " ".join(str(error).split())
        for secret in url_secrets(url):
            text = text.replace(secret, HIDDEN)
        return text
    return None


@dataclass(frozen=True, repr=False)
class DbLocation:
    """A SQLite file (`Path`) or a PostgreSQL URL (`str`, password included: never shown)."""

    target: Path | str

    @classmethod
    def parse(cls, text: str | Path) -> DbLocation:
        return cls(str(text) if is_url(text) else Path(text))

    @property
    def is_postgres(self) -> bool:
        return isinstance(self.target, str)

    @property
    def file(self) -> Path | None:
        """The SQLite file, or None on PostgreSQL (there is no file)."""
        return self.target if isinstance(self.target, Path) else None

    def __str__(self) -> str:
        return redacted(self.target) if isinstance(self.target, str) else str(self.target)

    def __repr__(self) -> str:
        return f"DbLocation({str(self)!r})"
