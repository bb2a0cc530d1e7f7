"""`mute_until:` on a rule: its matches are stored as usual, but routes hold them back until
that day begins (in the route's time zone), then deliver them: snoozed, never dropped."""

from __future__ import annotations

import json
from datetime import timedelta

from monitor.match.ruleset import load_ruleset
from monitor.store.outbox import Outbox
from tests.digest.world import NOW, RULES, SECRET, World, hook_channels, send
from tests.support.receivers import WebhookCatcher

# NOW is 2025-12-02 09:00 UTC; the strait rule is muted until the 4th.
MUTED = RULES.replace(
    "    severity: critical\n", "    severity: critical\n    mute_until: 2025-12-04\n"
)


def mute(world: World) -> None:
    (world.rules_dir / "alerts" / "asia.yaml").write_text(MUTED, encoding="utf-8")
    world.rules = {r.id: r for r in load_ruleset(world.rules_dir).rules}


def delivered_titles(hook: WebhookCatcher) -> list[list[str]]:
    bodies = [json.loads(request.body) for request in hook.requests]
    return [[i["title"] for g in b["groups"] for i in g["items"]] for b in bodies]


def test_matches_of_a_muted_rule_wait_for_its_date_then_go_out(world: World) -> None:
    mute(world)
    with WebhookCatcher(secret=SECRET) as hook:
        channels = world.channels(hook_channels(hook.url))
        Outbox(world.store).route_start("ops-now", NOW - timedelta(hours=1))
        world.add("a", "PLA drills in the Taiwan Strait", ["strait"])
        assert world.freeze(channels) is None  # stored and matched, but held
        assert world.freeze(channels, NOW + timedelta(days=1, hours=14)) is None  # 3rd, 23:00
        assert world.freeze(channels, NOW + timedelta(days=1, hours=15)) is not None  # the 4th
        assert send(world, channels, NOW + timedelta(days=2)) == [True]
    assert delivered_titles(hook) == [["PLA drills in the Taiwan Strait"]]


def test_the_mute_ends_at_midnight_in_the_routes_time_zone(world: World) -> None:
    mute(world)
    tokyo = hook_channels("https://hooks.example.org/x", "    timezone: Asia/Tokyo\n")
    channels = world.channels(tokyo)
    Outbox(world.store).route_start("ops-now", NOW - timedelta(hours=1))
    world.add("a", "PLA drills in the Taiwan Strait", ["strait"])
    # 2025-12-03 15:00 UTC is already the 4th in Tokyo.
    assert world.freeze(channels, NOW + timedelta(days=1, hours=5)) is None
    assert world.freeze(channels, NOW + timedelta(days=1, hours=6)) is not None


def test_an_item_another_rule_matched_goes_out_now(world: World) -> None:
    mute(world)
    with WebhookCatcher(secret=SECRET) as hook:
        channels = world.channels(hook_channels(hook.url))
        Outbox(world.store).route_start("ops-now", NOW - timedelta(hours=1))
        world.add("a", "Taiwan Strait tension hits the economy", ["strait", "economy"])
        world.add("b", "PLA drills in the Taiwan Strait", ["strait"])
        assert world.freeze(channels) is not None
        assert send(world, channels) == [True]
    (body,) = [json.loads(request.body) for request in hook.requests]
    (item,) = [i for g in body["groups"] for i in g["items"]]
    assert item["title"] == "Taiwan Strait tension hits the economy"
    assert [r["id"] for r in item["rules"]] == ["economy"]  # the muted rule is not shown
