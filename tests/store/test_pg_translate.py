"""The store's SQL as PostgreSQL reads it (store/pg.py `translate`): pure text, no server."""

from __future__ import annotations

import json

from monitor.store.pg import _params, is_url, redacted, translate


def test_placeholders_become_psycopg_ones_outside_quotes_only() -> None:
    sql, lists = translate("SELECT * FROM t WHERE a = ? AND b LIKE '%?%' AND c = :story")
    assert sql == "SELECT * FROM t WHERE a = %s AND b LIKE '%%?%%' AND c = %(story)s"
    assert lists == ()


def test_casts_and_json_paths_are_not_named_parameters() -> None:
    sql, _ = translate("SELECT x::json ->> 'id', ':not' FROM t WHERE y = ?")
    assert sql == "SELECT x::json ->> 'id', ':not' FROM t WHERE y = %s"


def test_a_json_list_parameter_becomes_an_array() -> None:
    sql, lists = translate(
        "SELECT * FROM items WHERE feed_id = ? AND id IN (SELECT value FROM json_each(?))"
        " AND guid NOT IN (SELECT value FROM json_each( ? ))"
    )
    assert sql == "SELECT * FROM items WHERE feed_id = %s AND id = ANY(%s) AND guid <> ALL(%s)"
    assert lists == (1, 2)
    values = _params(("f", json.dumps([3, 4]), json.dumps(["g"])), lists)
    assert values == ["f", [3, 4], ["g"]]


def test_insert_or_ignore_does_nothing_on_conflict() -> None:
    sql, _ = translate("INSERT OR IGNORE INTO routes (route_id) VALUES (?)")
    assert sql == "INSERT INTO routes (route_id) VALUES (%s) ON CONFLICT DO NOTHING "
    sql, _ = translate("INSERT OR IGNORE INTO t (a) VALUES (?) RETURNING a")
    assert sql == "INSERT INTO t (a) VALUES (%s) ON CONFLICT DO NOTHING RETURNING a"


def test_urls_select_postgresql_and_lose_their_password_in_messages() -> None:
    assert is_url("postgresql://u@h/db") and is_url("postgres://h/db")
    assert not is_url("state/monitor.db")
    assert redacted("postgresql://u:secret@h:5433/db") == "postgresql://u:***@h:5433/db"
    assert redacted("postgresql://u@h/db") == "postgresql://u@h/db"
