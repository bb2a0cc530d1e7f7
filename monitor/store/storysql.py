"""A story's aggregates in SQL (`STORY_AGGREGATES`), which the schema's retention trigger runs
and `storyrows` computes the same way in Python."""

# A story's aggregates from its members: outlets and languages in the order they first
# reported, regions and entities most named first, the headline its first report.
_MEMBERS = """FROM story_links AS l JOIN items AS i ON i.id = l.item_id
    WHERE l.story_id = :story"""
STORY_AGGREGATES = f"""UPDATE stories SET
    reports = (SELECT count(*) FROM story_links WHERE story_id = :story),
    first_seen = coalesce((SELECT min(i.published) {_MEMBERS}), first_seen),
    last_seen = coalesce((SELECT max(i.published) {_MEMBERS}), last_seen),
    outlets = (SELECT json_group_array(feed_id) FROM (SELECT i.feed_id, min(i.published) AS p
        {_MEMBERS} GROUP BY i.feed_id ORDER BY p, i.feed_id)),
    languages = (SELECT json_group_array(lang) FROM (SELECT i.lang, min(i.published) AS p
        {_MEMBERS} AND i.lang IS NOT NULL GROUP BY i.lang ORDER BY p, i.lang)),
    regions = (SELECT json_group_array(code) FROM (SELECT r.code, count(*) AS n
        FROM story_links AS l JOIN item_regions AS r ON r.item_id = l.item_id
        WHERE l.story_id = :story GROUP BY r.code ORDER BY n DESC, r.code)),
    entities = (SELECT json_group_array(entity_id) FROM (SELECT e.entity_id,
        count(DISTINCT e.item_id) AS n
        FROM story_links AS l JOIN item_entities AS e ON e.item_id = l.item_id
        WHERE l.story_id = :story GROUP BY e.entity_id ORDER BY n DESC, e.entity_id)),
    headline_item = (SELECT i.id {_MEMBERS} ORDER BY i.published, i.id LIMIT 1)
    WHERE id = :story"""
