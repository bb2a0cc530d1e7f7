"""Settings for the whole suite."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

# Property tests run on shared, noisy CI machines: no per-example deadline, and a fixed seed
# sequence so a run can be reproduced exactly. Parser properties discard inputs the parser
# rejects on purpose (`assume`), which is expected, not a sign of a bad strategy.
settings.register_profile(
    "monitor",
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)
settings.load_profile("monitor")


# --- PostgreSQL ------------------------------------------------------------------------------
# One throwaway cluster for the whole run (tests/support/pgcluster.py), started the first time
# a test asks for it; each test gets a database of its own. `MONITOR_TEST_PG` may name a server
# to use instead (a URL of a database whose user may create databases).

import itertools  # noqa: E402
import os  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tests.support.pgcluster import Cluster, server_url, start_cluster  # noqa: E402

_names = itertools.count(1)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Callable[[str], str]]:
    """Creates a database by name on the test server and returns its URL."""
    given = os.environ.get("MONITOR_TEST_PG")
    cluster: Cluster | None = None
    if not given:
        cluster = start_cluster()
    try:
        yield lambda name: server_url(given or cluster.dsn, name)  # type: ignore[union-attr]
    finally:
        if cluster is not None:
            cluster.stop()


@pytest.fixture
def pg_url(pg_server: Callable[[str], str]) -> str:
    """The URL of a new, empty PostgreSQL database for this test."""
    return pg_server(f"t{os.getpid()}_{next(_names)}")


BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def db_target(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """Where a test's `Store` lives, once per backend: a new SQLite file, then a new
    PostgreSQL database. A store test that takes this runs on both."""
    if request.param == "sqlite":
        return tmp_path / "state" / "monitor.db"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture(scope="module", params=BACKENDS)
def module_db_target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str | Path:
    """`db_target` for a module-scoped store (a corpus built once per module and backend)."""
    if request.param == "sqlite":
        return tmp_path_factory.mktemp("db") / "monitor.db"
    server = request.getfixturevalue("pg_server")
    return str(server(f"m{os.getpid()}_{next(_names)}"))
