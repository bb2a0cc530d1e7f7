"""The `stories:` block of the `settings:` in `rules/feeds.yaml`: how long a story stays open.

    settings:
      stories: {window: 48h}   # a report may join a story whose last report is this recent

Apart from `feeds` so that the feed file's reader stays about feeds.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

from ruamel.yaml.comments import CommentedMap

from monitor.yamlfile.check import Checker, as_duration, value_pos

STORY_KEYS = ("window",)
SHORTEST = timedelta(minutes=10)  # shorter would split every story told over an afternoon


def story_settings(checker: Checker, settings: CommentedMap) -> dict[str, Any]:
    """`Settings` fields from `settings.stories`, if it is there."""
    if "stories" not in settings:
        return {}
    block = checker.mapping(settings["stories"], value_pos(settings, "stories"), "'stories'")
    checker.keys(block, STORY_KEYS, "settings.stories")
    window = partial(as_duration, "stories.window", SHORTEST)
    return {"story_window": checker.value(block, "window", window, None)}
