"""The demo's stories: how many reports the linker made into how many stories, and the story
told most widely, so the summary shows what story-first digests are built from."""

from __future__ import annotations

from monitor.store import Store


def story_lines(store: Store) -> list[str]:
    """Lines for the demo's summary (empty when no item has a story)."""
    stories = store.find_stories(limit=100_000)
    if not stories:
        return []
    reports = sum(s.reports for s in stories)
    several = sum(1 for s in stories if len(s.languages) > 1)
    widest = max(stories, key=lambda s: (len(s.outlets), len(s.languages), -s.id))
    # Told by its first report in English, as a route with `languages: [en]` would head it.
    members = store.story_members([widest.id]).get(widest.id, [])
    english = [m for m in members if (m.item.lang or "").startswith("en")]
    lead = (english or members)[:1]
    headline = f": {lead[0].item.title}" if lead else ""
    langs = ", ".join(widest.languages)
    return [
        f"stories: {reports} reports in {len(stories)} stories, {several} told in more than"
        " one language",
        f"  widest: story {widest.id}{headline} ({len(widest.outlets)} outlets in {langs})",
    ]
