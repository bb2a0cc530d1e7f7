"""Stories: reports of one development, across outlets, grouped so a digest shows it once.
Pure logic over digest entries: no SQL, no network. `surge` decides when a story or a rule's
(or region's) matches surge, from counts the store gathers.
`linker` puts each new report in an open story or starts one, at ingest: `evidence` reads
figures, codes and operations, `profile` keeps each open story aggregated, `scoring` weighs
what a report and a story share, `places` says which places count; `evaluate` runs the linker
for the stories benchmark.

Entry points: `story_groups`, `same_story`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from monitor.lazy import exports

if TYPE_CHECKING:
    from monitor.story.grouping import same_story, story_groups

__all__ = ["same_story", "story_groups"]
__getattr__ = exports(__name__, {"story_groups": "grouping", "same_story": "grouping"})
