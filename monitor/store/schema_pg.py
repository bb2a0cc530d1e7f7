"""The schema on PostgreSQL: the same named migrations as `schema` (SQLite), in PostgreSQL's
words, applied in order and recorded in `monitor_migrations`.

The tables, columns and keys are SQLite's, so the store's SQL reads both: times are ISO text
(compared as text on both), flags are integers, ids are 64-bit. What SQLite does with triggers
over JSON columns (`item_regions`, `item_entities`, `item_hangul`, `story_pending`, a story's
aggregates when retention deletes its reports) is done by PL/pgSQL triggers here.

The full-text index is a table of its own, as FTS5's is (`items_fts`: `rowid`, `title`,
`summary`), plus `doc`, the tsvector the store writes from the same folded text, with title
words weighted A and summary words B (see `pgtext`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg

from monitor.store.pg import WRITE_LOCK
from monitor.store.schema import HANGUL_CHARS

PgMigration = tuple[str, tuple[str, ...]]
MIGRATIONS_PG: list[PgMigration] = []


def _migration(fn: Callable[[], tuple[str, ...]]) -> Callable[[], tuple[str, ...]]:
    MIGRATIONS_PG.append((fn.__name__, fn()))
    return fn


def applied(raw: psycopg.Connection[Any]) -> list[str]:
    raw.execute(
        "CREATE TABLE IF NOT EXISTS monitor_migrations (name TEXT PRIMARY KEY,"
        " applied_at TEXT NOT NULL)"
    )
    return [r[0] for r in raw.execute("SELECT name FROM monitor_migrations ORDER BY applied_at")]


def migrate(raw: psycopg.Connection[Any]) -> None:
    """Apply the pending migrations, each in its own transaction, under the write lock (two
    instances starting at once: the second finds nothing left to do)."""
    for name, statements in MIGRATIONS_PG:
        with raw.transaction():
            raw.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            if name in applied(raw):
                continue
            for sql in statements:
                raw.execute(sql.encode())  # bytes: no placeholder parsing of `%` in DDL
            raw.execute(
                "INSERT INTO monitor_migrations (name, applied_at) VALUES (%s, %s)",
                (name, datetime.now(UTC).isoformat()),
            )


def _trigger(name: str, table: str, when: str, body: str, condition: str = "") -> tuple[str, str]:
    """A row trigger running `body` (PL/pgSQL statements using NEW/OLD)."""
    cond = f" WHEN ({condition})" if condition else ""
    return (
        f"""CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN {body} RETURN NULL; END $$""",
        f"CREATE TRIGGER {name} {when} ON {table} FOR EACH ROW{cond} EXECUTE FUNCTION {name}()",
    )


@_migration
def m001_feeds() -> tuple[str, ...]:
    return (
        """CREATE TABLE feeds (
            feed_id TEXT PRIMARY KEY, url TEXT NOT NULL, configured_url TEXT,
            etag TEXT, last_modified TEXT,
            body_hash TEXT, last_attempt TEXT, last_success TEXT,
            consecutive_errors INTEGER NOT NULL DEFAULT 0, last_error TEXT, next_due TEXT,
            gone INTEGER NOT NULL DEFAULT 0)""",
    )


@_migration
def m002_items() -> tuple[str, ...]:
    return (
        """CREATE TABLE items (
            id BIGINT PRIMARY KEY, feed_id TEXT NOT NULL, guid TEXT NOT NULL, link TEXT,
            title TEXT NOT NULL, summary TEXT NOT NULL, html TEXT NOT NULL, author TEXT,
            lang TEXT, published TEXT NOT NULL, first_seen TEXT NOT NULL, updated TEXT,
            content_hash TEXT NOT NULL, regions TEXT NOT NULL DEFAULT '[]',
            UNIQUE (feed_id, guid))""",
        "CREATE INDEX items_published ON items (published)",
        "CREATE INDEX items_feed_published ON items (feed_id, published)",
        "CREATE INDEX items_first_seen ON items (first_seen)",
    )


_FILL_REGIONS = """INSERT INTO item_regions (item_id, code)
    SELECT DISTINCT NEW.id, value FROM json_array_elements_text(NEW.regions::json);"""


@_migration
def m003_item_regions() -> tuple[str, ...]:
    return (
        """CREATE TABLE item_regions (
            item_id BIGINT NOT NULL REFERENCES items (id) ON DELETE CASCADE,
            code TEXT NOT NULL, PRIMARY KEY (item_id, code))""",
        "CREATE INDEX item_regions_code ON item_regions (code, item_id)",
        *_trigger("items_regions_ai", "items", "AFTER INSERT", _FILL_REGIONS),
        *_trigger(
            "items_regions_au",
            "items",
            "AFTER UPDATE OF regions",
            "DELETE FROM item_regions WHERE item_id = OLD.id;" + _FILL_REGIONS,
            "OLD.regions IS DISTINCT FROM NEW.regions",
        ),
    )


@_migration
def m004_items_fts() -> tuple[str, ...]:
    return (
        """CREATE TABLE items_fts (
            rowid BIGINT PRIMARY KEY REFERENCES items (id) ON DELETE CASCADE,
            title TEXT NOT NULL, summary TEXT NOT NULL, doc TSVECTOR NOT NULL)""",
        "CREATE INDEX items_fts_doc ON items_fts USING gin (doc)",
    )


@_migration
def m005_matches() -> tuple[str, ...]:
    return (
        """CREATE TABLE matches (
            item_id BIGINT NOT NULL REFERENCES items (id) ON DELETE CASCADE,
            rule_id TEXT NOT NULL, score DOUBLE PRECISION NOT NULL, hits TEXT NOT NULL,
            matched_at TEXT NOT NULL, PRIMARY KEY (item_id, rule_id))""",
        "CREATE INDEX matches_rule ON matches (rule_id, matched_at)",
    )


@_migration
def m006_outbox() -> tuple[str, ...]:
    return (
        "CREATE TABLE routes (route_id TEXT PRIMARY KEY, first_seen TEXT NOT NULL)",
        """CREATE TABLE digests (
            id TEXT PRIMARY KEY, route_id TEXT NOT NULL, receiver_id TEXT NOT NULL,
            kind TEXT NOT NULL, created TEXT NOT NULL, subject TEXT NOT NULL,
            content_type TEXT NOT NULL, body BYTEA NOT NULL,
            shown INTEGER NOT NULL, truncated INTEGER NOT NULL,
            status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt TEXT, last_error TEXT, delivered TEXT)""",
        "CREATE INDEX digests_due ON digests (status, next_attempt)",
        """CREATE TABLE deliveries (
            route_id TEXT NOT NULL, item_id BIGINT NOT NULL,
            digest_id TEXT NOT NULL REFERENCES digests (id),
            shown INTEGER NOT NULL, PRIMARY KEY (route_id, item_id))""",
        "CREATE INDEX deliveries_digest ON deliveries (digest_id)",
        """CREATE TABLE disabled_receivers (
            receiver_id TEXT PRIMARY KEY, reason TEXT NOT NULL, since TEXT NOT NULL)""",
    )


@_migration
def m007_history() -> tuple[str, ...]:
    return (
        "ALTER TABLE matches ADD COLUMN history INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE feeds ADD COLUMN first_polled TEXT",
    )


@_migration
def m008_digest_upkeep() -> tuple[str, ...]:
    return (
        """CREATE TABLE left_out (
            digest_id TEXT NOT NULL REFERENCES digests (id), item_id BIGINT NOT NULL,
            PRIMARY KEY (digest_id, item_id))""",
        "CREATE INDEX deliveries_item ON deliveries (item_id)",
        "ALTER TABLE routes ADD COLUMN failures INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE routes ADD COLUMN failing_since TEXT",
        "ALTER TABLE routes ADD COLUMN last_error TEXT",
        "ALTER TABLE routes ADD COLUMN retry_at TEXT",
        "ALTER TABLE digests ADD COLUMN leased_until TEXT",
    )


_FILL_ENTITIES = """INSERT INTO item_entities (item_id, entity_id, kind, field, start, "end")
    SELECT NEW.id, e ->> 'id', e ->> 'kind', e ->> 'field', (e ->> 'start')::int,
        (e ->> 'end')::int
    FROM json_array_elements(NEW.entities::json) AS e ON CONFLICT DO NOTHING;"""


@_migration
def m009_item_entities() -> tuple[str, ...]:
    return (
        "ALTER TABLE items ADD COLUMN entities TEXT NOT NULL DEFAULT '[]'",
        """CREATE TABLE item_entities (
            item_id BIGINT NOT NULL REFERENCES items (id) ON DELETE CASCADE,
            entity_id TEXT NOT NULL, kind TEXT NOT NULL, field TEXT NOT NULL,
            start INTEGER NOT NULL, "end" INTEGER NOT NULL,
            PRIMARY KEY (item_id, entity_id, field, start))""",
        "CREATE INDEX item_entities_entity ON item_entities (entity_id, item_id)",
        "CREATE INDEX item_entities_kind ON item_entities (kind, item_id)",
        *_trigger("items_entities_ai", "items", "AFTER INSERT", _FILL_ENTITIES),
        *_trigger(
            "items_entities_au",
            "items",
            "AFTER UPDATE OF entities",
            "DELETE FROM item_entities WHERE item_id = OLD.id;" + _FILL_ENTITIES,
            "OLD.entities IS DISTINCT FROM NEW.entities",
        ),
    )


# `storysql.STORY_AGGREGATES` in PostgreSQL's words: json_agg keeps the order asked for. Names
# tie-break in code point order (COLLATE "C"), as SQLite and `storyrows.aggregate` order them,
# whatever the database's collation (en_US would put `abc` before `Zed`).
_MEMBERS = "FROM story_links AS l JOIN items AS i ON i.id = l.item_id WHERE l.story_id = sid"
_AGGREGATES = f"""UPDATE stories SET
    reports = (SELECT count(*) FROM story_links WHERE story_id = sid),
    first_seen = coalesce((SELECT min(i.published) {_MEMBERS}), first_seen),
    last_seen = coalesce((SELECT max(i.published) {_MEMBERS}), last_seen),
    outlets = coalesce((SELECT json_agg(feed_id ORDER BY p, feed_id COLLATE "C")::text FROM
        (SELECT i.feed_id, min(i.published) AS p {_MEMBERS} GROUP BY i.feed_id) AS o), '[]'),
    languages = coalesce((SELECT json_agg(lang ORDER BY p, lang COLLATE "C")::text FROM
        (SELECT i.lang, min(i.published) AS p {_MEMBERS} AND i.lang IS NOT NULL
        GROUP BY i.lang) AS g), '[]'),
    regions = coalesce((SELECT json_agg(code ORDER BY n DESC, code COLLATE "C")::text FROM
        (SELECT r.code, count(*) AS n FROM story_links AS l
        JOIN item_regions AS r ON r.item_id = l.item_id
        WHERE l.story_id = sid GROUP BY r.code) AS c), '[]'),
    entities = coalesce((SELECT json_agg(entity_id ORDER BY n DESC, entity_id COLLATE "C")::text
        FROM (SELECT e.entity_id, count(DISTINCT e.item_id) AS n FROM story_links AS l
        JOIN item_entities AS e ON e.item_id = l.item_id
        WHERE l.story_id = sid GROUP BY e.entity_id) AS t), '[]'),
    headline_item = (SELECT i.id {_MEMBERS} ORDER BY i.published, i.id LIMIT 1)
    WHERE id = sid;"""


@_migration
def m010_stories() -> tuple[str, ...]:
    return (
        """CREATE TABLE stories (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, created TEXT NOT NULL,
            first_seen TEXT NOT NULL, last_seen TEXT NOT NULL,
            reports INTEGER NOT NULL DEFAULT 0, outlets TEXT NOT NULL DEFAULT '[]',
            languages TEXT NOT NULL DEFAULT '[]', regions TEXT NOT NULL DEFAULT '[]',
            entities TEXT NOT NULL DEFAULT '[]', headline_item BIGINT)""",
        "CREATE INDEX stories_last_seen ON stories (last_seen)",
        """CREATE TABLE story_links (
            item_id BIGINT PRIMARY KEY REFERENCES items (id) ON DELETE CASCADE,
            story_id BIGINT NOT NULL REFERENCES stories (id),
            score DOUBLE PRECISION NOT NULL, why TEXT NOT NULL DEFAULT '[]',
            started INTEGER NOT NULL DEFAULT 0, manual INTEGER NOT NULL DEFAULT 0,
            linked_at TEXT NOT NULL)""",
        "CREATE INDEX story_links_story ON story_links (story_id, item_id)",
        """CREATE TABLE story_merges (
            story_id BIGINT PRIMARY KEY, into_id BIGINT NOT NULL, merged_at TEXT NOT NULL)""",
        """CREATE TABLE story_pending (
            item_id BIGINT PRIMARY KEY REFERENCES items (id) ON DELETE CASCADE)""",
        *_trigger(
            "items_story_pending_ai",
            "items",
            "AFTER INSERT",
            "INSERT INTO story_pending (item_id) VALUES (NEW.id);",
        ),
        *_trigger(
            "story_links_ad",
            "story_links",
            "AFTER DELETE",
            f"""DECLARE sid BIGINT := OLD.story_id; BEGIN
            {_AGGREGATES}
            DELETE FROM story_merges WHERE into_id = sid AND NOT EXISTS
                (SELECT 1 FROM story_links WHERE story_id = sid);
            DELETE FROM stories WHERE id = sid AND NOT EXISTS
                (SELECT 1 FROM story_links WHERE story_id = sid);
            END;""",
        ),
    )


@_migration
def m011_story_sent() -> tuple[str, ...]:
    return (
        """CREATE TABLE story_sent (
            route_id TEXT NOT NULL, story_id BIGINT NOT NULL,
            outlets TEXT NOT NULL, languages TEXT NOT NULL, severity TEXT NOT NULL,
            digest_id TEXT NOT NULL REFERENCES digests (id), sent TEXT NOT NULL,
            PRIMARY KEY (route_id, story_id))""",
    )


@_migration
def m012_surges() -> tuple[str, ...]:
    return (
        """CREATE TABLE surges (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, kind TEXT NOT NULL,
            key TEXT NOT NULL, profile TEXT NOT NULL, why TEXT NOT NULL, fired_at TEXT NOT NULL,
            items TEXT NOT NULL DEFAULT '[]', facts TEXT NOT NULL DEFAULT '{}')""",
        "CREATE INDEX surges_key ON surges (kind, profile, key, fired_at)",
        "CREATE INDEX surges_fired ON surges (fired_at)",
        "CREATE INDEX matches_time ON matches (matched_at, history)",
        """CREATE TABLE surge_deliveries (
            route_id TEXT NOT NULL, surge_id BIGINT NOT NULL REFERENCES surges (id),
            digest_id TEXT NOT NULL REFERENCES digests (id),
            PRIMARY KEY (route_id, surge_id))""",
    )


# Any Hangul (as `schema.HANGUL_GLOB`): syllables, jamo, compatibility and half-width jamo.
_HANGUL = f"'[{HANGUL_CHARS}]'"
_FILL_HANGUL = f"""IF NEW.title ~ {_HANGUL} OR NEW.summary ~ {_HANGUL} THEN
    INSERT INTO item_hangul (item_id) VALUES (NEW.id) ON CONFLICT DO NOTHING; END IF;"""


@_migration
def m013_item_hangul() -> tuple[str, ...]:
    return (
        """CREATE TABLE item_hangul (
            item_id BIGINT PRIMARY KEY REFERENCES items (id) ON DELETE CASCADE)""",
        *_trigger("items_hangul_ai", "items", "AFTER INSERT", _FILL_HANGUL),
        *_trigger(
            "items_hangul_au",
            "items",
            "AFTER UPDATE OF title, summary",
            "DELETE FROM item_hangul WHERE item_id = OLD.id;" + _FILL_HANGUL,
        ),
    )


@_migration
def m014_cluster() -> tuple[str, ...]:
    return (
        """CREATE TABLE feed_leases (
            feed_id TEXT PRIMARY KEY, holder TEXT NOT NULL, leased_until TEXT NOT NULL)""",
        "CREATE INDEX feed_leases_holder ON feed_leases (holder, leased_until)",
        """CREATE TABLE instances (
            id TEXT PRIMARY KEY, host TEXT NOT NULL, pid BIGINT NOT NULL,
            started TEXT NOT NULL, seen TEXT NOT NULL, live_until TEXT NOT NULL,
            version TEXT NOT NULL)""",
        """CREATE TABLE digest_periods (
            route_id TEXT NOT NULL, period TEXT NOT NULL, instance TEXT NOT NULL,
            claimed TEXT NOT NULL, PRIMARY KEY (route_id, period))""",
    )


@_migration
def m015_story_tallies() -> tuple[str, ...]:
    return (
        "CREATE TABLE story_tallies (story_id BIGINT PRIMARY KEY, tally TEXT NOT NULL)",
        "CREATE INDEX story_links_manual ON story_links (linked_at) WHERE manual = 1",
        *_trigger(
            "story_links_ad_tally",
            "story_links",
            "AFTER DELETE",
            "DELETE FROM story_tallies WHERE story_id = OLD.story_id;",
        ),
        *_trigger(
            "items_au_tally",
            "items",
            "AFTER UPDATE OF regions, entities",
            """DELETE FROM story_tallies WHERE story_id =
                (SELECT story_id FROM story_links WHERE item_id = OLD.id);""",
            "OLD.regions IS DISTINCT FROM NEW.regions OR OLD.entities IS DISTINCT FROM"
            " NEW.entities",
        ),
    )


@_migration
def m016_known_items() -> tuple[str, ...]:
    # The fingerprints of the items of each feed's last stored body (`ingest.knownitems`).
    return ("ALTER TABLE feeds ADD COLUMN known_items BYTEA NOT NULL DEFAULT ''::bytea",)


@_migration
def m017_pending_reads() -> tuple[str, ...]:
    # What a parse worker read of a pending item's text for linking (`profile.packed_read`).
    return ("ALTER TABLE story_pending ADD COLUMN read TEXT",)


@_migration
def m018_tags_by_writer() -> tuple[str, ...]:
    # As in SQLite (`schema.m018_tags_by_writer`): one code path fills a new item's rows.
    names = ("items_hangul_ai", "items_regions_ai", "items_entities_ai")
    return tuple(
        sql for name in names
        for sql in (f"DROP TRIGGER {name} ON items", f"DROP FUNCTION {name}()")
    )  # fmt: skip
