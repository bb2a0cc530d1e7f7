"""The `surge:` block of `rules/channels.yaml` (the thresholds for everyone) and of a route
(its own thresholds, over the file's): `story: {outlets, languages, window, cooldown}` and
`volume: {factor, min, cooldown}`. Every key is optional; what a route leaves out comes from
the file's block, and what that leaves out from the defaults in `story.surge`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from functools import partial
from typing import Any

from ruamel.yaml.comments import CommentedMap

from monitor.story.surge import KINDS, StorySettings, SurgeSettings, VolumeSettings
from monitor.yamlfile.check import Checker, Invalid, as_duration, as_int, key_pos, value_pos

SURGE_KEYS = KINDS
STORY_KEYS = ("outlets", "languages", "window", "cooldown")
VOLUME_KEYS = ("factor", "min", "cooldown")


def as_factor(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 1:
        raise Invalid(f"'factor' must be a number of at least 1, got {value!r}", "e.g. factor: 3")
    return float(value)


def surge_settings(check: Checker, parent: Any, key: str, base: SurgeSettings) -> SurgeSettings:
    """`parent[key]` read over `base`; `base` itself when the key is absent."""
    if parent.get(key) is None:
        return base
    node = check.mapping(parent[key], value_pos(parent, key), f"'{key}'")
    check.keys(node, SURGE_KEYS, f"'{key}'")
    return SurgeSettings(
        story=_story(check, node, base.story), volume=_volume(check, node, base.volume)
    )


def route_surge(check: Checker, route: Any, base: SurgeSettings) -> SurgeSettings | None:
    """A route's own thresholds over `base` (None when it sets none). Only a route that takes
    surges may set them: anywhere else they would be silently ignored."""
    if "surge" not in route:
        return None
    match = route.get("match")
    if not (isinstance(match, CommentedMap) and match.get("surge")):
        hint = "add 'surge: [story, volume]' to its 'match:', or remove 'surge:'"
        check.fail(
            "this route sets surge thresholds but takes no surges", key_pos(route, "surge"), hint
        )
    return surge_settings(check, route, "surge", base)


def _story(check: Checker, surge: Any, base: StorySettings) -> StorySettings:
    if surge.get("story") is None:
        return base
    node = check.mapping(surge["story"], value_pos(surge, "story"), "'story'")
    check.keys(node, STORY_KEYS, "'story'")
    # Two at least: one outlet or one language is every story, not a surge.
    return replace(
        base,
        outlets=check.value(node, "outlets", partial(as_int, "outlets", 2), base.outlets),
        languages=check.value(node, "languages", partial(as_int, "languages", 2), base.languages),
        window=check.value(
            node, "window", partial(as_duration, "window", timedelta(minutes=5)), base.window
        ),
        cooldown=check.value(
            node, "cooldown", partial(as_duration, "cooldown", timedelta(minutes=1)), base.cooldown
        ),
    )


def _volume(check: Checker, surge: Any, base: VolumeSettings) -> VolumeSettings:
    if surge.get("volume") is None:
        return base
    node = check.mapping(surge["volume"], value_pos(surge, "volume"), "'volume'")
    check.keys(node, VOLUME_KEYS, "'volume'")
    return replace(
        base,
        factor=check.value(node, "factor", as_factor, base.factor),
        min=check.value(node, "min", partial(as_int, "min", 1), base.min),
        cooldown=check.value(
            node, "cooldown", partial(as_duration, "cooldown", timedelta(minutes=1)), base.cooldown
        ),
    )
