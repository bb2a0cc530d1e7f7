"""Entity tagging: which people, organisations and places an item names, and the regions they
imply ("Xi tells Trump" is about CN and US).

The entities' names are aliases of a second `Gazetteer` whose "regions" are entity ids, so
they are resolved by the very rules that tag countries: whole matches by script, longest match
(`China Coast Guard` is not `China`, and a blocker such as `Kyoto Protocol` tags nothing),
`ambiguous` names only next to a `context` word (`@CODE`: a region tagged in the same text),
`exact` names only as capitalised. The names go into the rule set's one automaton beside the
gazetteer aliases (`RuleSet.compile`): tagging costs no scan of its own.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from functools import cache

from monitor.match.entities import KINDS, Entities, Entity, load_entities
from monitor.match.regionfile import Region
from monitor.match.regions import Alias, Gazetteer, Hit
from monitor.match.textnorm import boundary_ok, fold, term_script
from monitor.models import EntityTag

# Whether a tagged entity of each kind also tags its country's region. Organisations do not by
# default: a company or an agency is named in news about anywhere (Nvidia, Boeing).
DEFAULT_IMPLIED: Mapping[str, bool] = {"person": True, "org": False, "place": True}
FIELDS = ("title", "summary")

__all__ = ["DEFAULT_IMPLIED", "EntityTagger", "builtin_tagger"]


class EntityTagger:
    """The entities compiled for tagging; immutable and safe to share between threads."""

    def __init__(self, entities: Entities) -> None:
        self.entities = entities
        self.names = _name_gazetteer(entities)  # names, blockers, context words -> entity ids
        self.implied = implied_setting(entities.implied)

    def __reduce__(self) -> tuple[object, tuple[Entities]]:
        # Sent to parse workers as the entities; the name gazetteer is made again there.
        return (type(self), (self.entities,))

    def alias_texts(self) -> list[str]:
        """Every folded text the scan must report: names and blockers. Not the context words:
        common words (`city`, `court`, `china`) that would cost a look in most items, while
        they matter only beside an ambiguous name; `tag` looks for those itself."""
        return sorted({alias.text for alias in self.names.aliases if not alias.context})

    def tag(
        self, hits: list[Hit], texts: tuple[str, str], raw: str, regions: Iterable[str]
    ) -> tuple[EntityTag, ...]:
        """The entities of resolved `hits` (offsets in the folded `title + "\\n" + summary`,
        `texts` the folded fields), in text order; `regions` serve `@CODE` context."""
        shift = len(texts[0]) + 1
        out: dict[tuple[str, int, int], EntityTag] = {}
        hits = hits + self._context_hits(hits, texts)
        for index, start, end in self.names.winners(hits, raw=raw, seen=regions):
            alias = self.names.aliases[index]
            in_summary = start >= shift
            offset = shift if in_summary else 0
            for ident in alias.codes:
                kind = self.entities[ident].kind
                tag = EntityTag(ident, kind, FIELDS[in_summary], start - offset, end - offset)
                out.setdefault((ident, tag.start, tag.end), tag)
        return tuple(out.values())

    def _context_hits(self, hits: list[Hit], texts: tuple[str, str]) -> list[Hit]:
        """Hits for the context words that the conditional names among `hits` ask about and
        that are in `texts` (positions do not matter for context)."""
        aliases = self.names.aliases
        words = {w for i, _, _ in hits for w in (*aliases[i].requires, *aliases[i].unless)}
        found = []
        for word in words:
            if not word.startswith("@") and any(_present(text, word) for text in texts):
                found += [(i, 0, 0) for i in self.names.indices(word) if aliases[i].context]
        return found

    def implied_regions(self, tags: Iterable[EntityTag]) -> set[str]:
        """The region codes the tagged entities stand for, where their kind's setting is on."""
        codes: set[str] = set()
        for tag in tags:
            entity = self.entities[tag.id]
            if self.implied.get(entity.kind, False):
                codes.update(c for c in (entity.country, entity.parent) if c)
        return codes


def _name_gazetteer(entities: Entities) -> Gazetteer:
    aliases: list[Alias] = []
    context: set[str] = set()
    for entity in entities:
        aliases += _aliases(entity)
        context.update(c for c in entity.context if not c.startswith("@"))
    for text in entities.blockers:
        folded = fold(text).strip()
        aliases.append(Alias(folded, (), term_script(folded), ""))
    for word in sorted(context):
        aliases.append(Alias(word, (), term_script(word), "", context=True))
    regions = {e.id: Region(e.id, e.name) for e in entities}
    return Gazetteer(regions, tuple(aliases))


def _present(text: str, word: str) -> bool:
    """Whether folded `word` is in folded `text` as a whole match by its script."""
    script = term_script(word)
    start = text.find(word)
    while start >= 0:
        if boundary_ok(text, start, start + len(word), script):
            return True
        start = text.find(word, start + 1)
    return False


def _aliases(entity: Entity) -> list[Alias]:
    out = []
    for lang, name in entity.names:
        folded = fold(name).strip()
        if not folded:
            continue
        requires = entity.context if name in entity.ambiguous else ()
        exact = unicodedata.normalize("NFKC", name) if name in entity.exact else ""
        out.append(Alias(folded, (entity.id,), term_script(folded), lang, requires, (), exact))
    return out


def implied_setting(value: Mapping[str, bool] | None) -> dict[str, bool]:
    """The defaults with the kinds `value` names replaced."""
    merged = dict(DEFAULT_IMPLIED)
    merged.update({k: v for k, v in (value or {}).items() if k in KINDS})
    return merged


@cache
def builtin_tagger() -> EntityTagger:
    """The shipped entities with the default settings, compiled once per process."""
    return EntityTagger(load_entities())
