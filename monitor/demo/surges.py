"""The demo's surges: found after its poll with the thresholds of its channels.yaml, told in
its summary as counts per kind and the widest story and the sharpest volume surge, with why."""

from __future__ import annotations

from monitor.store import Store
from monitor.store.surges import StoredSurge, Surges

# The demo's one surge route: Korean missile launches only, so that its mailbox shows a story
# surge and a volume surge rather than every surge of a busy week.
SURGE_ROUTE = """\
  - id: desk-surges
    receiver: desk
    match:
      surge: [story, volume]
      rules: [korea-missiles]
"""


def surge_lines(store: Store) -> list[str]:
    """Lines for the demo's summary (empty when nothing surged)."""
    fired = Surges(store).recent(limit=10_000)
    story = [s for s in fired if s.surge.kind == "story"]
    volume = [s for s in fired if s.surge.kind == "volume"]
    if not fired:
        return []
    lines = [f"surges: {len(story)} story, {len(volume)} volume (each once per cooldown)"]
    if story:
        widest = max(story, key=lambda s: (s.surge.facts.get("outlets", 0), -s.id))
        first = store.get_items(list(widest.surge.items[:1]))
        headline = f" ({first[0].item.title})" if first else ""
        lines.append(_line(widest, headline))
    if volume:
        sharpest = max(volume, key=lambda s: (s.surge.facts.get("matches", 0), -s.id))
        lines.append(_line(sharpest))
    return lines


def _line(stored: StoredSurge, headline: str = "") -> str:
    surge = stored.surge
    return f"  {surge.kind} surge {surge.key}{headline}: {surge.why}"
