"""`GET /items/{id}`: one stored item whole, as `monitor items show` tells it.

The same library call (`store.details.item_detail`): every field, the regions and entities,
each rule it matched with the text around each hit (marked), whether that was history, the
digests it went out in, and its story. Also the feeds file, read (and kept until it changes)
for feed titles and for the `tag:` of searches.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from monitor.errors import ConfigError
from monitor.ingest.feeds import load_feeds
from monitor.match.rule import Hit
from monitor.models import Feed
from monitor.service.watched import Stamp, file_stamp
from monitor.store.details import StoredMatch, item_detail
from monitor.web.marks import Piece, context, field_pieces
from monitor.web.render import page
from monitor.web.state import console

_feeds_lock = threading.Lock()
_feeds_cache: dict[Path, tuple[Stamp, tuple[Feed, ...]]] = {}


def known_feeds(rules_dir: Path) -> tuple[Feed, ...]:
    """The feeds of `rules/feeds.yaml`, read again only when the file changes. A file being
    edited (or broken) gives no feeds: titles and tags decorate, they must not hide items."""
    path = rules_dir / "feeds.yaml"
    stamp = file_stamp(path)
    with _feeds_lock:
        cached = _feeds_cache.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
    try:
        feeds = load_feeds(path).feeds
    except ConfigError:
        feeds = ()
    with _feeds_lock:
        _feeds_cache[path] = (stamp, feeds)
    return feeds


@dataclass(frozen=True)
class HitView:
    hit: Hit
    context: list[Piece]


@dataclass(frozen=True)
class MatchView:
    match: StoredMatch
    hits: list[HitView]


def item_page(request: Request) -> Response:
    item_id: int = request.path_params["item_id"]
    state = console(request)
    detail = item_detail(state.store, item_id)
    if detail is None:
        raise HTTPException(404, f"No item with id {item_id}: find items on the Search page.")
    story_id = state.store.item_stories([item_id]).get(item_id)
    story = state.store.get_story(story_id) if story_id is not None else None
    item = detail.stored.item
    titles = {f.id: f.title for f in known_feeds(state.config.rules_dir)}
    every_hit = [h for m in detail.matches for h in m.hits]
    return page(
        request,
        "item.html",
        active="search",
        stored=detail.stored,
        item=item,
        feed_title=titles.get(item.feed_id),
        title=field_pieces(item.title, every_hit, "title"),
        summary=field_pieces(item.summary, every_hit, "summary"),
        matches=_match_views(detail.matches, {"title": item.title, "summary": item.summary}),
        history=bool(detail.matches) and all(m.history for m in detail.matches),
        digests=detail.digests,
        story=story,
    )


def _match_views(matches: Sequence[StoredMatch], texts: dict[str, str]) -> list[MatchView]:
    return [MatchView(m, [HitView(h, context(texts[h.field], h)) for h in m.hits]) for m in matches]
