"""Plain frozen values passed between pipeline stages.

The stages never hand each other mutable state: each takes and returns these dataclasses, so
a stage can be tested on its own and run in another process (parsing does) without surprises.
All datetimes are timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # digest-only values, kept beside the digest code
    from monitor.digest.storyview import DigestStory
    from monitor.story.surge import SurgeSettings

DEFAULT_INTERVAL = timedelta(minutes=15)
USER_AGENT = "monitor/0.1 (self-hosted news alert service)"


@dataclass(frozen=True)
class Settings:
    """Service-wide knobs, from the optional `settings:` block of `rules/feeds.yaml`."""

    concurrency: int = 32  # requests in flight overall
    per_host: int = 4  # requests in flight per host
    connect_timeout: float = 10.0  # seconds
    read_timeout: float = 30.0  # seconds between two reads
    total_timeout: float = 60.0  # seconds for a whole request, redirects included
    max_body_bytes: int = 10 * 1024 * 1024  # after decompression
    max_redirects: int = 5
    retention: timedelta = timedelta(days=90)
    user_agent: str = USER_AGENT
    # Old news is stored and matched but never alerted on (its matches are "history"): an item
    # published this long before its feed's first poll (the backlog of a feed just added)...
    first_poll_grace: timedelta = timedelta(hours=1)
    # ...or longer ago than this when it is first seen (a feed back after an outage).
    alert_max_age: timedelta = timedelta(days=2)
    # A new report may join a story whose last report is at most this much older or newer.
    story_window: timedelta = timedelta(hours=48)
    # How long an instance's claim on a feed lasts unless renewed: a feed held by an instance
    # that died is taken by another after this (store.cluster).
    lease: timedelta = timedelta(minutes=5)


@dataclass(frozen=True)
class Feed:
    """One source from `rules/feeds.yaml`, validated."""

    id: str
    url: str
    title: str | None = None
    tags: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()  # a hint: codes the feed is about
    interval: timedelta = DEFAULT_INTERVAL
    enabled: bool = True
    # HTTP basic auth: the NAMES of the environment variables holding the login, never the
    # login itself (feeds.yaml refuses a URL with user:password@). Read by ingest/fetch.
    username_env: str | None = None
    password_env: str | None = None


@dataclass(frozen=True)
class FeedState:
    """What the store remembers about a feed between polls: HTTP cache keys and health."""

    feed_id: str
    url: str  # the URL to fetch now; a permanent redirect replaces the configured one
    # The URL in feeds.yaml when this state began: if the user edits it, the state starts over.
    configured_url: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None  # for servers that send neither validator
    last_attempt: datetime | None = None
    last_success: datetime | None = None
    consecutive_errors: int = 0
    last_error: str | None = None
    next_due: datetime | None = None
    gone: bool = False  # the server answered 410: never polled again until re-added
    # The first poll of this feed (at this URL): what was published well before it is history.
    first_polled: datetime | None = None
    known_items: bytes = b""  # the last stored body's items, fingerprinted (`ingest.knownitems`)


class FetchStatus(StrEnum):
    OK = "ok"  # a body to parse
    NOT_MODIFIED = "not_modified"  # 304, or the same body hash as last time
    GONE = "gone"  # 410: disable the feed
    ERROR = "error"  # anything else: back off


@dataclass(frozen=True)
class FetchResult:
    """The outcome of one HTTP fetch. `fetch` never raises for a feed's own failure."""

    feed_id: str
    status: FetchStatus
    url: str  # the URL finally answered (after redirects)
    http_status: int | None = None
    body: bytes | None = None  # decoded (gunzipped) body, only when status is OK
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    permanent_url: str | None = None  # set when a 301/308 chain moved the feed
    retry_after: timedelta | None = None  # from Retry-After on 429/503
    error: str | None = None  # one line a user can act on
    elapsed: float = 0.0  # seconds


@dataclass(frozen=True)
class Entry:
    """One entry as the feed gave it (parse stage): fields may be HTML or missing."""

    guid: str | None
    link: str | None
    title: str | None  # may contain HTML
    summary: str | None  # summary/description HTML
    content: str | None  # full content HTML when the feed has it
    author: str | None
    language: str | None
    published: datetime | None
    updated: datetime | None


@dataclass(frozen=True)
class ParsedFeed:
    """A parsed document: the feed's own metadata and its entries."""

    title: str | None
    link: str | None
    language: str | None
    entries: tuple[Entry, ...]
    warning: str | None = None  # a recoverable problem (feedparser's bozo) worth showing


@dataclass(frozen=True)
class EntityTag:
    """An entity an item names (see monitor.match.tagger): where, as offsets in the folded
    field text like a match's hits."""

    id: str
    kind: str  # person | org | place
    field: str  # title | summary
    start: int
    end: int

    def as_json(self) -> dict[str, str | int]:
        """The form of JSON outputs, digests and webhooks (new keys only, never renamed)."""
        return {"id": self.id, "kind": self.kind, "field": self.field, "start": self.start,
                "end": self.end}  # fmt: skip


@dataclass(frozen=True)
class Item:
    """A normalised item, ready to store. `guid` is unique within its feed."""

    feed_id: str
    guid: str
    link: str | None
    title: str  # plain text
    summary: str  # plain text
    # The original HTML (content, else summary), NOT sanitised: whatever renders it as HTML
    # must sanitise it first.
    html: str
    author: str | None
    lang: str | None
    published: datetime
    first_seen: datetime
    content_hash: str  # of title + summary + link: tells an edited item from an unchanged one
    regions: tuple[str, ...] = ()
    entities: tuple[EntityTag, ...] = ()  # set with the regions, by the match stage


@dataclass(frozen=True)
class StoreResult:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    matches: int = 0  # rule matches recorded for the new and updated items
    history: int = 0  # of those, matches kept as history: old news, never delivered


@dataclass(frozen=True)
class PollOutcome:
    """What one poll of one feed did; `monitor poll` and the service log these."""

    feed_id: str
    status: FetchStatus
    new: int = 0
    updated: int = 0
    matches: int = 0
    history: int = 0  # matches kept as history (see Settings.first_poll_grace)
    error: str | None = None
    elapsed: float = 0.0


@dataclass(frozen=True)
class CycleSummary:
    outcomes: tuple[PollOutcome, ...]
    elapsed: float
    # Feeds left out because they are backing off after errors: (feed id, when they are due).
    backing_off: tuple[tuple[str, datetime | None], ...] = ()
    # Due feeds left out because another instance holds them now: (feed id, instance id).
    held: tuple[tuple[str, str], ...] = ()

    def count(self, status: FetchStatus) -> int:
        return sum(1 for o in self.outcomes if o.status is status)

    @property
    def new(self) -> int:
        return sum(o.new for o in self.outcomes)

    @property
    def updated(self) -> int:
        return sum(o.updated for o in self.outcomes)

    @property
    def matches(self) -> int:
        return sum(o.matches for o in self.outcomes)

    @property
    def history(self) -> int:
        return sum(o.history for o in self.outcomes)

    @property
    def all_failed(self) -> bool:
        """Every feed polled failed (an error or gone): `monitor poll` exits 1."""
        return bool(self.outcomes) and all(o.error for o in self.outcomes)


@dataclass(frozen=True)
class StoredItem:
    """An item read back from the store, with its row id and when it last changed."""

    id: int
    item: Item
    updated: datetime | None = None


@dataclass(frozen=True)
class StoryRow:
    """A stored story: one development told by one or more reports (items).

    `first_seen`/`last_seen` are the published times of its first and last report; `outlets`
    (feed ids) and `languages` in the order they first reported; `regions` and `entities`
    (entity ids) most named first; `headline_item` is the first report's item id.
    """

    id: int
    first_seen: datetime
    last_seen: datetime
    reports: int
    outlets: tuple[str, ...]
    languages: tuple[str, ...]
    regions: tuple[str, ...]
    entities: tuple[str, ...]
    headline_item: int


# --- channels (rules/channels.yaml) and digests ------------------------------------------

SEVERITIES = ("info", "low", "medium", "high", "critical")  # in increasing order


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int = 25
    tls: str = "none"  # none | starttls | tls (implicit TLS, usually port 465)
    username_env: str | None = None  # names of environment variables, never the secrets
    password_env: str | None = None
    timeout: float = 30.0


@dataclass(frozen=True)
class EmailReceiver:
    to: tuple[str, ...]
    sender: str  # `from:` in the file
    smtp: SmtpServer
    cc: tuple[str, ...] = ()


@dataclass(frozen=True)
class WebhookReceiver:
    url: str
    secret_env: str | None = None  # Standard Webhooks secret (`whsec_...`), by variable
    headers: Mapping[str, str] = field(default_factory=dict)
    format: str = "json"  # json | slack
    timeout: float = 30.0


@dataclass(frozen=True)
class Receiver:
    id: str
    email: EmailReceiver | None = None
    webhook: WebhookReceiver | None = None


@dataclass(frozen=True)
class RouteMatch:
    """Which matches a route takes; every given criterion must hold (AND)."""

    severity: tuple[str, ...] = ()  # any of these; empty = any
    rules: tuple[str, ...] = ()  # any of these rule ids
    regions: tuple[str, ...] = ()  # the item is tagged with any of these
    labels: Mapping[str, str] = field(default_factory=dict)  # the rule has all of these
    surge: tuple[str, ...] = ()  # surge alerts it takes too: story | volume

    @property
    def surges_only(self) -> bool:
        """A route with `surge:` takes surge alerts only (its other criteria choose which);
        digests of matches go to routes without it."""
        return bool(self.surge)


@dataclass(frozen=True)
class Route:
    id: str  # stable: deliveries are recorded per route id
    receiver: str
    match: RouteMatch = RouteMatch()
    schedule: str = "immediate"  # "immediate" or a 5-field cron expression
    timezone: str = "UTC"
    group_by: tuple[str, ...] = ("rule",)  # rule | region | severity | story
    max_items: int = 50
    send_empty: bool = False
    give_up_after: timedelta = timedelta(hours=24)  # a digest failing this long is dead
    # Items the receiver already got from another route: "reference" (one line) or "full".
    repeat: str = "reference"
    max_age: timedelta | None = None  # items published longer ago are never delivered
    languages: tuple[str, ...] = ()  # a story's headline: its first report in these
    updates: bool = False  # send a short update when a story already sent grows
    surge: SurgeSettings | None = None  # its own surge thresholds (None: the file's)


@dataclass(frozen=True)
class RuleRef:
    """A rule as a digest shows it: enough to explain why an item is there."""

    id: str
    title: str
    severity: str
    labels: Mapping[str, str] = field(default_factory=dict)
    terms: tuple[str, ...] = ()  # the terms that hit, as the rule wrote them


@dataclass(frozen=True)
class DigestEntry:
    """One item in a digest, with every rule of the route that matched it."""

    item_id: int
    item: Item
    feed_title: str
    rules: tuple[RuleRef, ...]
    also: tuple[tuple[str, str | None], ...] = ()  # same story elsewhere: (feed title, link)
    story: DigestStory | None = None  # the stored story it stands for (digests only)

    @property
    def severity(self) -> str:
        return max((r.severity for r in self.rules), key=SEVERITIES.index, default="medium")


@dataclass(frozen=True)
class SentBefore:
    """An item the receiver already got in another digest: a digest only refers to it."""

    entry: DigestEntry
    sent: datetime  # when that digest was delivered (or frozen, while it is on its way)
    digest_id: str


@dataclass(frozen=True)
class Digest:
    """What a route sends at one time, before rendering. `id` is stable across retries."""

    id: str
    route: Route
    receiver: Receiver
    created: datetime
    window_start: datetime | None  # the earliest item's published time (None when empty)
    window_end: datetime  # the latest item's published time (`created` when empty)
    entries: tuple[DigestEntry, ...]
    truncated: int = 0  # matches left for the route's next digest because of max_items
    already: tuple[SentBefore, ...] = ()  # shown as one-line references (route.repeat)
    web_url: str | None = None  # the console's address (channels.yaml): entries link there


@dataclass(frozen=True)
class Rendered:
    """A digest frozen to bytes: what is stored, sent, and resent byte-identical."""

    digest_id: str
    kind: str  # email | webhook
    body: bytes  # the whole RFC 5322 message, or the webhook body
    subject: str
    content_type: str
