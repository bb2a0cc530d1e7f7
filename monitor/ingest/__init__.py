"""The ingest stage: fetch each due feed, parse it, normalise its entries into `Item`s, tag and
match them, and hand them to the store. Only `ingest/fetch` makes HTTP requests; the rest is
pure or goes through `store`. `feeds` reads and edits `rules/feeds.yaml`, `opml` maps it to OPML,
`discover` looks at a URL before it becomes a feed (`feeds add`, `feeds check`; no store).
`linking` puts each cycle's new items into stories (the linker decides, the store records).
`claims` makes a cycle poll only the due feeds it claimed, so instances sharing a database
never poll one feed at once.

Entry points: `poll_cycle` (one cycle over every due feed), `poll_feed` (one feed, top to
bottom), `load_feeds` / `FeedsFile`, `import_opml` / `export_opml`, `find_feed` / `probe_feeds`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from monitor.lazy import exports

if TYPE_CHECKING:
    from monitor.ingest.discover import find_feed, probe_feeds
    from monitor.ingest.feeds import FeedsFile, load_feeds
    from monitor.ingest.opml import export_opml, import_opml
    from monitor.ingest.poll import poll_cycle, poll_feed

__all__ = [
    "FeedsFile",
    "export_opml",
    "find_feed",
    "import_opml",
    "load_feeds",
    "poll_cycle",
    "poll_feed",
    "probe_feeds",
]
__getattr__ = exports(
    __name__,
    {
        "poll_cycle": "poll",
        "poll_feed": "poll",
        "load_feeds": "feeds",
        "FeedsFile": "feeds",
        "import_opml": "opml",
        "export_opml": "opml",
        "find_feed": "discover",
        "probe_feeds": "discover",
    },
)
