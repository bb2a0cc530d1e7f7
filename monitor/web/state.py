"""The console's shared state: its configuration and one store for all requests.

Pages are plain (sync) functions run in Starlette's thread pool; they share one `Store`,
which serialises its own use of a SQLite connection (on PostgreSQL, each call takes a
connection from its pool). The rules are read from `rules/` when a page needs them and kept
until a file under it changes, as the service does.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from starlette.requests import Request

from monitor.match.ruleset import RuleSet, load_ruleset, rule_paths
from monitor.service.watched import Stamp, file_stamp
from monitor.store import Store
from monitor.web.config import WebConfig


@dataclass
class Console:
    config: WebConfig
    _store: Store | None = None
    _rules: tuple[Stamp, RuleSet] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def store(self) -> Store:
        with self._lock:
            if self._store is None:
                self._store = Store(self.config.db.target)
            return self._store

    def ruleset(self) -> RuleSet:
        """The rules in force (raises `MonitorError` when the files do not load)."""
        stamp = file_stamp(*rule_paths(self.config.rules_dir))
        with self._lock:
            if self._rules is None or self._rules[0] != stamp:
                self._rules = (stamp, load_ruleset(self.config.rules_dir))
            return self._rules[1]

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None


def console(request: Request) -> Console:
    state: Console = request.app.state.console
    return state
