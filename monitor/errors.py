"""The one exception tree of monitor.

    MonitorError                 everything below carries a hint for the user
    ├── ConfigError              a file under rules/ is wrong: names file, line, column
    ├── ConfigErrors             several of those at once (rule files are checked whole)
    ├── FeedError                one feed failed (fetch or parse): names the feed
    │   ├── FetchError
    │   └── ParseError
    └── StoreError               the database cannot be opened or written

The CLI prints `str(error)` on one line and exits non-zero; the service logs it and goes on.
"""

from __future__ import annotations


class MonitorError(Exception):
    """Base class: a message plus an optional hint saying what to do."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(MonitorError):
    """A user-edited file is invalid. `str()` reads `file:line:col: message (hint)`."""

    def __init__(
        self,
        message: str,
        *,
        path: str,
        line: int | None = None,
        column: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.path = path
        self.line = line  # 1-based
        self.column = column  # 1-based

    def __str__(self) -> str:
        where = self.path
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {super().__str__()}"


class FeedError(MonitorError):
    """One feed failed; the cycle goes on with the others."""

    def __init__(self, message: str, *, feed_id: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.feed_id = feed_id

    def __str__(self) -> str:
        return f"feed {self.feed_id}: {super().__str__()}"


class FetchError(FeedError):
    pass


class ParseError(FeedError):
    pass


class StoreError(MonitorError):
    pass


class ConfigErrors(MonitorError):
    """Several files or entries are wrong at once (rule files are checked as a whole)."""

    def __init__(self, errors: list[ConfigError]) -> None:
        first = str(errors[0]).splitlines()[0] if errors else "invalid configuration"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(first + more, hint="run `monitor rules check` to see every error")
        self.errors = errors
