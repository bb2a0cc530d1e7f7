"""Stories: reports of one development, across outlets, grouped so a digest shows it once.
Pure logic over digest entries: no SQL, no network.

Entry points: `story_groups`, `same_story`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from monitor.lazy import exports

if TYPE_CHECKING:
    from monitor.story.grouping import same_story, story_groups

__all__ = ["same_story", "story_groups"]
__getattr__ = exports(__name__, {"story_groups": "grouping", "same_story": "grouping"})
