"""A feed's basic-auth login, read from the environment variables `feeds.yaml` names.

The login itself never appears in `feeds.yaml` (nor in logs): only the names of the variables
that hold it. `fetch` sends it to the origin of the feed's own URL only.
"""

from __future__ import annotations

import base64
import os

from monitor.errors import FetchError
from monitor.models import Feed


def _login(feed_id: str, feed: Feed | None) -> tuple[str, str] | None:
    """The feed's basic-auth login, read from the environment variables it names."""
    if feed is None or feed.username_env is None or feed.password_env is None:
        return None
    names = (feed.username_env, feed.password_env)
    unset = [name for name in names if not os.environ.get(name)]
    if unset:
        raise FetchError(
            f"the login is read from {' and '.join(unset)}, which is not set",
            feed_id=feed_id,
            hint="set it in the service's environment (never in feeds.yaml)",
        )
    return os.environ[names[0]], os.environ[names[1]]


def authorization(username: str, password: str) -> str:
    """The Authorization header's value for HTTP basic auth (the login in UTF-8, as httpx)."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
