"""Logging for people and for machines, with secrets kept out.

Two formats: `human` (the default, one readable line per event) and `json` (one JSON object
per line: `ts`, `level`, `logger`, `msg`, plus `feed`, `rule`, `receiver`, `digest`, `surge`,
`surge_kind` and `surge_key` when a log call passes them with `extra=`, and `exc` for a
traceback).

Secrets live in environment variables named by `*_env` keys of `channels.yaml`
(`password_env: SMTP_PASSWORD`). A filter on every handler replaces their values with
`[redacted]` in each record's message, arguments and traceback before any formatter sees it,
so a server that echoes a password in an error reply cannot put it in the log (nor the
base64 of it that an SMTP `AUTH` line carries). The names are
read from the file's text with a pattern rather than through the channels validator: an
invalid or half-edited file must still have its secrets redacted.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.deliver.result import REDACTED as REDACTED  # one mark for logs and stored errors
from monitor.deliver.result import echo_forms

if TYPE_CHECKING:
    from monitor.models import CycleSummary

FORMATS = ("human", "json")
CONTEXT_FIELDS = ("feed", "rule", "receiver", "digest", "surge", "surge_kind", "surge_key")
HUMAN_FORMAT = "%(asctime)s %(levelname)s %(message)s"
HUMAN_DATES = "%Y-%m-%dT%H:%M:%S%z"

# `password_env: SMTP_PASSWORD`, `secret_env: "HOOK"`, also inside flow mappings `{...}`.
_ENV_KEY = re.compile(r"\b\w+_env\s*:\s*[\"']?([A-Za-z_][A-Za-z0-9_]*)")


def secret_names(text: str) -> set[str]:
    """Names of the environment variables that `*_env` keys in a channels file refer to."""
    return set(_ENV_KEY.findall(text))


def secrets_named_in(path: Path, env: Mapping[str, str]) -> list[str]:
    """The values (set and non-empty) of the variables named in `path`; none if it is absent."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [env[name] for name in sorted(secret_names(text)) if env.get(name)]


class Redactor(logging.Filter):
    """Replaces known secret values in a record's message, arguments and traceback."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: tuple[str, ...] = ()
        self.update(secrets)

    def update(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret containing another is replaced whole.
        self.secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        # Merge the arguments into the message first: a secret may only appear once they are.
        record.msg, record.args = self.redact(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line; see the module docstring for the fields."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                doc[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            doc["exc"] = record.exc_text
        return json.dumps(doc, ensure_ascii=False, default=str)


# The one filter of this process: the service updates it when channels.yaml changes.
REDACTOR = Redactor()


def setup_logging(*, verbose: bool, fmt: str, channels_file: Path) -> None:
    """Configure the root logger once for a command: format, level, and secret redaction."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(HUMAN_FORMAT, HUMAN_DATES))
    watch_secrets(channels_file)
    watch_secrets(channels_file.with_name("feeds.yaml"))  # feed logins by variable
    handler.addFilter(REDACTOR)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    # httpx logs every request at INFO: far too chatty for a service polling many feeds.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def watch_secrets(channels_file: Path, env: Mapping[str, str] | None = None) -> None:
    """Add the secrets `channels_file` names to those redacted.

    Never forgets one: the last good channels (and a digest in flight) may still use a secret
    whose name was just edited out of the file.
    """
    found = secrets_named_in(channels_file, os.environ if env is None else env)
    # Their base64 forms too: a mail server refusing a login may quote the AUTH line back.
    REDACTOR.update([*REDACTOR.secrets, *echo_forms(found)])


def summary_line(summary: CycleSummary) -> str:
    """The one log line a cycle writes."""
    from monitor.models import FetchStatus  # not at the top: `monitor --help` loads this module

    return (
        f"poll cycle: {len(summary.outcomes)} feeds "
        f"({summary.count(FetchStatus.OK)} ok, "
        f"{summary.count(FetchStatus.NOT_MODIFIED)} not modified, "
        f"{summary.count(FetchStatus.ERROR)} failed, {summary.count(FetchStatus.GONE)} gone), "
        f"{summary.new} new, {summary.updated} updated items, {summary.matches} rule matches "
        f"({summary.history} kept as history) in {summary.elapsed:.1f} s"
    )
