"""The database schema: named migrations applied in order by `sqlite_utils.Migrations`.

Never edit a migration once released: a change is a new migration appended at the end.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from monitor.store.storysql import STORY_AGGREGATES

MIGRATIONS = Migrations("monitor")
MIGRATION_NAMES: list[str] = []  # to recognise a database migrated by a newer monitor


def _migration(fn: Callable[[Database], None]) -> Callable[[Database], None]:
    MIGRATION_NAMES.append(fn.__name__)
    return MIGRATIONS()(fn)


def run_sql(db: Database, *statements: str) -> None:
    for sql in statements:
        db.execute(sql)


@_migration
def m001_feeds(db: Database) -> None:
    run_sql(
        db,
        """CREATE TABLE feeds (
            feed_id TEXT PRIMARY KEY, url TEXT NOT NULL, configured_url TEXT,
            etag TEXT, last_modified TEXT,
            body_hash TEXT, last_attempt TEXT, last_success TEXT,
            consecutive_errors INTEGER NOT NULL DEFAULT 0, last_error TEXT, next_due TEXT,
            gone INTEGER NOT NULL DEFAULT 0)""",
    )


@_migration
def m002_items(db: Database) -> None:
    run_sql(
        db,
        """CREATE TABLE items (
            id INTEGER PRIMARY KEY, feed_id TEXT NOT NULL, guid TEXT NOT NULL, link TEXT,
            title TEXT NOT NULL, summary TEXT NOT NULL, html TEXT NOT NULL, author TEXT,
            lang TEXT, published TEXT NOT NULL, first_seen TEXT NOT NULL, updated TEXT,
            content_hash TEXT NOT NULL, regions TEXT NOT NULL DEFAULT '[]',
            UNIQUE (feed_id, guid))""",
        "CREATE INDEX items_published ON items (published)",
        "CREATE INDEX items_feed_published ON items (feed_id, published)",
        "CREATE INDEX items_first_seen ON items (first_seen)",
    )


@_migration
def m003_item_regions(db: Database) -> None:
    # Filled by triggers from items.regions, so the two can never disagree.
    run_sql(
        db,
        """CREATE TABLE item_regions (
            item_id INTEGER NOT NULL REFERENCES items (id) ON DELETE CASCADE,
            code TEXT NOT NULL, PRIMARY KEY (item_id, code)) WITHOUT ROWID""",
        "CREATE INDEX item_regions_code ON item_regions (code, item_id)",
        """CREATE TRIGGER items_regions_ai AFTER INSERT ON items BEGIN
            INSERT INTO item_regions (item_id, code)
            SELECT DISTINCT new.id, value FROM json_each(new.regions);
        END""",
        """CREATE TRIGGER items_regions_au AFTER UPDATE OF regions ON items
        WHEN old.regions IS NOT new.regions BEGIN
            DELETE FROM item_regions WHERE item_id = old.id;
            INSERT INTO item_regions (item_id, code)
            SELECT DISTINCT new.id, value FROM json_each(new.regions);
        END""",
    )


@_migration
def m004_items_fts(db: Database) -> None:
    # The index holds `search_text` of the text, which only Python computes, so `save_items`
    # writes it in the items' transaction. The table keeps its own copy of that text so that
    # a delete needs none: a contentless table must be told the exact text it indexed, which
    # a later change to folding would break (and it saved only ~7% of a cold poll's writing).
    # A trigger can then do the deletes.
    run_sql(
        db,
        """CREATE VIRTUAL TABLE items_fts USING fts5 (
            title, summary, tokenize='unicode61 remove_diacritics 2')""",
        """CREATE TRIGGER items_fts_ad AFTER DELETE ON items BEGIN
            DELETE FROM items_fts WHERE rowid = old.id;
        END""",
        # Merge index segments less eagerly than by default (4 and 16): a cold poll is ~1,000
        # small transactions, and this cut the index's own writing time by ~20% (measured).
        "INSERT INTO items_fts (items_fts, rank) VALUES ('automerge', 8)",
        "INSERT INTO items_fts (items_fts, rank) VALUES ('crisismerge', 64)",
    )


@_migration
def m005_matches(db: Database) -> None:
    # One row per (item, rule) that matched, written in the transaction that stores the item:
    # a stored item is never without its matches. `hits` (JSON) is what makes a match explain
    # itself: [{"term", "field", "start", "end"}], offsets in the folded field text.
    run_sql(
        db,
        """CREATE TABLE matches (
            item_id INTEGER NOT NULL REFERENCES items (id) ON DELETE CASCADE,
            rule_id TEXT NOT NULL, score REAL NOT NULL, hits TEXT NOT NULL,
            matched_at TEXT NOT NULL, PRIMARY KEY (item_id, rule_id)) WITHOUT ROWID""",
        "CREATE INDEX matches_rule ON matches (rule_id, matched_at)",
    )


@_migration
def m006_outbox(db: Database) -> None:
    # A digest is frozen before any send: its id, the exact bytes to send and the items it
    # covers, in one transaction. `deliveries` is the promise "an item reaches a route at most
    # once": its key refuses a second digest claiming the same item for the same route.
    run_sql(
        db,
        """CREATE TABLE routes (route_id TEXT PRIMARY KEY, first_seen TEXT NOT NULL)""",
        """CREATE TABLE digests (
            id TEXT PRIMARY KEY, route_id TEXT NOT NULL, receiver_id TEXT NOT NULL,
            kind TEXT NOT NULL, created TEXT NOT NULL, subject TEXT NOT NULL,
            content_type TEXT NOT NULL, body BLOB NOT NULL,
            shown INTEGER NOT NULL, truncated INTEGER NOT NULL,
            status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt TEXT, last_error TEXT, delivered TEXT)""",
        "CREATE INDEX digests_due ON digests (status, next_attempt)",
        """CREATE TABLE deliveries (
            route_id TEXT NOT NULL, item_id INTEGER NOT NULL,
            digest_id TEXT NOT NULL REFERENCES digests (id),
            shown INTEGER NOT NULL, PRIMARY KEY (route_id, item_id)) WITHOUT ROWID""",
        "CREATE INDEX deliveries_digest ON deliveries (digest_id)",
        """CREATE TABLE disabled_receivers (
            receiver_id TEXT PRIMARY KEY, reason TEXT NOT NULL, since TEXT NOT NULL)""",
    )


@_migration
def m007_history(db: Database) -> None:
    # A match is history when its item was old news when monitor first saw it (published well
    # before its feed's first poll, or older than the alert age): stored, searchable, shown by
    # `rules test`, never delivered. `feeds.first_polled` anchors the first-poll grace.
    run_sql(
        db,
        "ALTER TABLE matches ADD COLUMN history INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE feeds ADD COLUMN first_polled TEXT",
    )


@_migration
def m008_digest_upkeep(db: Database) -> None:
    # `left_out`: the items a digest counted but did not list (over max_items). They are no
    # longer claimed in `deliveries` (they stay pending for the route's next digest), so the
    # rows older versions wrote with shown = 0 move here and their items become pending again.
    # `routes` keeps the last failure to build a route's digest, for `monitor status` and for
    # trying again later.
    run_sql(
        db,
        """CREATE TABLE left_out (
            digest_id TEXT NOT NULL REFERENCES digests (id), item_id INTEGER NOT NULL,
            PRIMARY KEY (digest_id, item_id)) WITHOUT ROWID""",
        "INSERT INTO left_out (digest_id, item_id)"
        " SELECT digest_id, item_id FROM deliveries WHERE shown = 0",
        "DELETE FROM deliveries WHERE shown = 0",
        # "Did this receiver already get the item?" looks deliveries up by item.
        "CREATE INDEX deliveries_item ON deliveries (item_id)",
        "ALTER TABLE routes ADD COLUMN failures INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE routes ADD COLUMN failing_since TEXT",
        "ALTER TABLE routes ADD COLUMN last_error TEXT",
        "ALTER TABLE routes ADD COLUMN retry_at TEXT",
        # A lease told apart from a retry's wait: `monitor digest retry` may cut the wait short,
        # never a send in progress.
        "ALTER TABLE digests ADD COLUMN leased_until TEXT",
    )


@_migration
def m009_item_entities(db: Database) -> None:
    # The entities an item names, as `items.entities` (JSON: [{"id", "kind", "field", "start",
    # "end"}]) and one row each in `item_entities`, filled by triggers like `item_regions` so
    # the two never disagree. Items stored before this have none until they are edited.
    run_sql(
        db,
        "ALTER TABLE items ADD COLUMN entities TEXT NOT NULL DEFAULT '[]'",
        """CREATE TABLE item_entities (
            item_id INTEGER NOT NULL REFERENCES items (id) ON DELETE CASCADE,
            entity_id TEXT NOT NULL, kind TEXT NOT NULL, field TEXT NOT NULL,
            start INTEGER NOT NULL, "end" INTEGER NOT NULL,
            PRIMARY KEY (item_id, entity_id, field, start)) WITHOUT ROWID""",
        "CREATE INDEX item_entities_entity ON item_entities (entity_id, item_id)",
        "CREATE INDEX item_entities_kind ON item_entities (kind, item_id)",
        f"""CREATE TRIGGER items_entities_ai AFTER INSERT ON items BEGIN {_FILL_ENTITIES} END""",
        f"""CREATE TRIGGER items_entities_au AFTER UPDATE OF entities ON items
        WHEN old.entities IS NOT new.entities BEGIN
            DELETE FROM item_entities WHERE item_id = old.id;
            {_FILL_ENTITIES}
        END""",
    )


_FILL_ENTITIES = """INSERT OR IGNORE INTO item_entities
                (item_id, entity_id, kind, field, start, "end")
            SELECT new.id, json_extract(value, '$.id'), json_extract(value, '$.kind'),
                json_extract(value, '$.field'), json_extract(value, '$.start'),
                json_extract(value, '$.end')
            FROM json_each(new.entities);"""


@_migration
def m010_stories(db: Database) -> None:
    # A story is one development as several reports tell it. `story_links` is each item's
    # story and why it is there (`why`: JSON list of phrases; `started` for the report that
    # made the story; `manual` when an analyst moved it). `stories` keeps aggregates of its
    # members, recomputed when they change (`storyrows.aggregate`; when retention deletes
    # items, a trigger runs `STORY_AGGREGATES`, the same in SQL, and an emptied story goes).
    # Ids are AUTOINCREMENT so a merged or deleted story's id is never given to another;
    # `story_merges` remembers where a merged story went. `story_pending` queues every item
    # stored from now on (a trigger, so the save path needs no change) until it is linked:
    # an item stored before this migration has no story and never gets one.
    run_sql(
        db,
        """CREATE TABLE stories (
            id INTEGER PRIMARY KEY AUTOINCREMENT, created TEXT NOT NULL,
            first_seen TEXT NOT NULL, last_seen TEXT NOT NULL,
            reports INTEGER NOT NULL DEFAULT 0, outlets TEXT NOT NULL DEFAULT '[]',
            languages TEXT NOT NULL DEFAULT '[]', regions TEXT NOT NULL DEFAULT '[]',
            entities TEXT NOT NULL DEFAULT '[]', headline_item INTEGER)""",
        "CREATE INDEX stories_last_seen ON stories (last_seen)",
        """CREATE TABLE story_links (
            item_id INTEGER PRIMARY KEY REFERENCES items (id) ON DELETE CASCADE,
            story_id INTEGER NOT NULL REFERENCES stories (id),
            score REAL NOT NULL, why TEXT NOT NULL DEFAULT '[]',
            started INTEGER NOT NULL DEFAULT 0, manual INTEGER NOT NULL DEFAULT 0,
            linked_at TEXT NOT NULL)""",
        "CREATE INDEX story_links_story ON story_links (story_id, item_id)",
        """CREATE TABLE story_merges (
            story_id INTEGER PRIMARY KEY, into_id INTEGER NOT NULL, merged_at TEXT NOT NULL)""",
        """CREATE TABLE story_pending (
            item_id INTEGER PRIMARY KEY REFERENCES items (id) ON DELETE CASCADE)""",
        """CREATE TRIGGER items_story_pending_ai AFTER INSERT ON items BEGIN
            INSERT INTO story_pending (item_id) VALUES (new.id);
        END""",
        f"""CREATE TRIGGER story_links_ad AFTER DELETE ON story_links BEGIN
            {STORY_AGGREGATES.replace(":story", "old.story_id")};
            DELETE FROM story_merges WHERE into_id = old.story_id AND NOT EXISTS
                (SELECT 1 FROM story_links WHERE story_id = old.story_id);
            DELETE FROM stories WHERE id = old.story_id AND NOT EXISTS
                (SELECT 1 FROM story_links WHERE story_id = old.story_id);
        END""",
    )


@_migration
def m011_story_sent(db: Database) -> None:
    # What each route was sent of each story (outlets, languages, severity, digest, when), so
    # a story goes to a route once as new and `updates: true` can tell when it grew. Written
    # in the transaction that freezes the digest (store/storysent.py).
    run_sql(
        db,
        """CREATE TABLE story_sent (
            route_id TEXT NOT NULL, story_id INTEGER NOT NULL,
            outlets TEXT NOT NULL, languages TEXT NOT NULL, severity TEXT NOT NULL,
            digest_id TEXT NOT NULL REFERENCES digests (id), sent TEXT NOT NULL,
            PRIMARY KEY (route_id, story_id)) WITHOUT ROWID""",
    )


@_migration
def m012_surges(db: Database) -> None:
    # A surge fired once: its kind (story | volume), key (story:ID, rule:ID, region:CODE), the
    # thresholds that found it (`profile`: a route may override them) and why, in words. The
    # cooldown looks up the last one per (kind, profile, key). `surge_deliveries` is the
    # promise "a surge reaches a route at most once", as `deliveries` is for items: its key
    # refuses a second alert of one surge to one route; the alert itself is a frozen digest.
    run_sql(
        db,
        """CREATE TABLE surges (
            id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, key TEXT NOT NULL,
            profile TEXT NOT NULL, why TEXT NOT NULL, fired_at TEXT NOT NULL,
            items TEXT NOT NULL DEFAULT '[]', facts TEXT NOT NULL DEFAULT '{}')""",
        "CREATE INDEX surges_key ON surges (kind, profile, key, fired_at)",
        "CREATE INDEX surges_fired ON surges (fired_at)",
        # Volume surges count the matches of the last week: found by time, not by rule. With
        # `history` the index covers that count (a WITHOUT ROWID index carries the key).
        "CREATE INDEX matches_time ON matches (matched_at, history)",
        """CREATE TABLE surge_deliveries (
            route_id TEXT NOT NULL, surge_id INTEGER NOT NULL REFERENCES surges (id),
            digest_id TEXT NOT NULL REFERENCES digests (id),
            PRIMARY KEY (route_id, surge_id)) WITHOUT ROWID""",
    )


# Any Hangul: syllables, jamo, compatibility and half-width jamo (which fold into Hangul).
HANGUL_CHARS = "\uac00-\ud7af\u1100-\u11ff\u3130-\u318f\uffa0-\uffdc"
HANGUL_GLOB = f"*[{HANGUL_CHARS}]*"
_HAS_HANGUL = f"(title GLOB '{HANGUL_GLOB}' OR summary GLOB '{HANGUL_GLOB}')"


@_migration
def m013_item_hangul(db: Database) -> None:
    # The items with Korean text. The full-text index keeps a Latin word glued to Hangul
    # (`북한UN`) as one token where the rule engine sees two words, so the console's rule
    # playground (store/web_rules.py) reads these items whatever the index says. Kept by
    # triggers, as item_regions is; testing the text at each search cost ~5 us per item.
    new = _HAS_HANGUL.replace("title", "new.title").replace("summary", "new.summary")
    run_sql(
        db,
        """CREATE TABLE item_hangul (
            item_id INTEGER PRIMARY KEY REFERENCES items (id) ON DELETE CASCADE)""",
        f"INSERT INTO item_hangul (item_id) SELECT id FROM items WHERE {_HAS_HANGUL}",
        f"""CREATE TRIGGER items_hangul_ai AFTER INSERT ON items WHEN {new} BEGIN
            INSERT OR IGNORE INTO item_hangul (item_id) VALUES (new.id);
        END""",
        f"""CREATE TRIGGER items_hangul_au AFTER UPDATE OF title, summary ON items BEGIN
            DELETE FROM item_hangul WHERE item_id = old.id;
            INSERT INTO item_hangul (item_id) SELECT new.id WHERE {new};
        END""",
    )


@_migration
def m014_cluster(db: Database) -> None:
    # Several instances on one database (store/cluster.py). `feed_leases`: which instance
    # polls a feed, until when; a table of its own, because a feed never polled has no
    # `feeds` row yet. `instances`: each `monitor run`'s heartbeat (live while `live_until`
    # is ahead). `digest_periods`: a cron route's period, claimed once by whichever
    # instance's scheduler fires first.
    run_sql(
        db,
        """CREATE TABLE feed_leases (
            feed_id TEXT PRIMARY KEY, holder TEXT NOT NULL, leased_until TEXT NOT NULL)
            WITHOUT ROWID""",
        "CREATE INDEX feed_leases_holder ON feed_leases (holder, leased_until)",
        """CREATE TABLE instances (
            id TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL,
            started TEXT NOT NULL, seen TEXT NOT NULL, live_until TEXT NOT NULL,
            version TEXT NOT NULL)""",
        """CREATE TABLE digest_periods (
            route_id TEXT NOT NULL, period TEXT NOT NULL, instance TEXT NOT NULL,
            claimed TEXT NOT NULL, PRIMARY KEY (route_id, period)) WITHOUT ROWID""",
    )


@_migration
def m015_story_tallies(db: Database) -> None:
    # What a story's aggregates are made of (`storyrows.Tally`, JSON): each outlet's and
    # language's first report, each region's and entity's count, so that linking folds in
    # only the new reports instead of re-reading every member of a story of thousands. A
    # story without one is recomputed from its members (and gets one): so anything that
    # takes a report away (retention, a cascade) or edits its tags drops it. The hand-moved
    # links get an index of their own: `Store.story_token`, twice a batch, read them all.
    run_sql(
        db,
        "CREATE TABLE story_tallies (story_id INTEGER PRIMARY KEY, tally TEXT NOT NULL)",
        "CREATE INDEX story_links_manual ON story_links (linked_at) WHERE manual = 1",
        """CREATE TRIGGER story_links_ad_tally AFTER DELETE ON story_links BEGIN
            DELETE FROM story_tallies WHERE story_id = old.story_id;
        END""",
        """CREATE TRIGGER items_au_tally AFTER UPDATE OF regions, entities ON items
        WHEN old.regions IS NOT new.regions OR old.entities IS NOT new.entities BEGIN
            DELETE FROM story_tallies WHERE story_id =
                (SELECT story_id FROM story_links WHERE item_id = old.id);
        END""",
    )


@_migration
def m016_known_items(db: Database) -> None:
    # The fingerprints of the items of each feed's last stored body (`ingest.knownitems`).
    run_sql(db, "ALTER TABLE feeds ADD COLUMN known_items BLOB NOT NULL DEFAULT x''")


@_migration
def m017_pending_reads(db: Database) -> None:
    # What a parse worker read of a pending item's text for linking (`profile.packed_read`).
    run_sql(db, "ALTER TABLE story_pending ADD COLUMN read TEXT")


@_migration
def m018_tags_by_writer(db: Database) -> None:
    # The writer fills a new item's rows in item_regions, item_entities and item_hangul
    # itself (`saving._insert`), from the values it writes in the item's row. The triggers
    # read them back: JSON parsed again, field by field, and a GLOB over every character of
    # the text; on the poll farm's items, ~85% of the instructions of their INSERT (callgrind).
    # Edits keep their triggers.
    run_sql(
        db,
        "DROP TRIGGER items_hangul_ai",
        "DROP TRIGGER items_regions_ai",
        "DROP TRIGGER items_entities_ai",
    )
