"""Region tagging: which countries and places an item is about, from its title and summary.

The gazetteer is built in three layers, each applied over the one before:

1. `data/gazetteer/countries.json`: every ISO 3166-1 country with its English names, capital,
   demonym and Japanese/Chinese/Korean names, generated from maintained packages
   (`python -m monitor.data.gazetteer.build`);
2. `data/gazetteer/curated.yaml`: what those packages lack or get wrong for this news (short
   names, press forms, places that stand for a country, blockers, ambiguous names);
3. the user's `rules/regions.yaml`, in the same format as layer 2.

Resolving the raw hits of the aliases in a text follows these rules, in order:

- Only whole matches count, by the script of the alias (`textnorm.boundary_ok`).
- Longest match wins: among overlapping hits the longest is kept and the shorter ones inside
  it are dropped (`South Sudan` is not `Sudan`, `China Airlines` is not `China`).
- A blocker (an alias with no codes) that wins tags nothing: that is how `New Mexico`, `fine
  china` or `Air Jordan` stay silent.
- An ambiguous alias tags only when its condition holds: `requires` names context (words, or
  `@CODE` for a region tagged unconditionally elsewhere in the text) of which at least one
  must be present; `unless` names context of which none may be present; `exact` asks for the
  alias with its own capitalisation (`US`, not `us`).
- A tagged region brings its `parent` (the administering country: Senkaku -> JP, Hong Kong ->
  CN) and its `group` (a sea or area code: SENKAKU -> ECS), transitively.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache, cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import ahocorasick
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from monitor.errors import ConfigError
from monitor.textnorm import Script, boundary_ok, fold, term_script

LANGS = ("en", "ja", "zh", "ko")
Hit = tuple[int, int, int]  # (alias index, start, end) in folded text; end is exclusive
_CODE_RE = re.compile(r"[A-Z][A-Z0-9-]{1,15}")
_NO_PLURAL = ("s", "sh", "ch", "ese", "x", "z", "i")


@dataclass(frozen=True, slots=True)
class Region:
    code: str
    name: str
    parent: str | None = None  # administering country: a tag of this region implies it
    group: str | None = None  # sea or area this belongs to: implied too


@dataclass(frozen=True, slots=True)
class Alias:
    """One searchable name. `text` is folded; equal texts are separate aliases."""

    text: str
    codes: tuple[str, ...]  # () for a blocker or a context word
    script: Script
    lang: str  # en | ja | zh | ko, or "" for context words
    requires: tuple[str, ...] = ()  # folded context words or "@CODE": one must be present
    unless: tuple[str, ...] = ()  # same form: none may be present
    exact: str = ""  # NFKC form that must occur as written (case-sensitive) in the raw text
    context: bool = False  # only a context word: never tags, never blocks

    @property
    def code(self) -> str | None:
        return self.codes[0] if self.codes else None

    @property
    def conditional(self) -> bool:
        return bool(self.requires or self.unless or self.exact)


@dataclass(slots=True)
class _Spec:
    """An alias while the layers are being applied (codes mutable, text not yet indexed)."""

    codes: tuple[str, ...]
    lang: str
    requires: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()
    exact: str = ""


class Gazetteer:
    """The regions and their aliases; `tag` is safe to call from several threads."""

    def __init__(self, regions: dict[str, Region], aliases: tuple[Alias, ...]) -> None:
        self._regions = regions
        self.aliases = aliases
        self.codes = frozenset(regions)
        self._closure = {code: self._ancestry(code) for code in regions}
        self._exact = {a.exact: _exact_pattern(a.exact) for a in aliases if a.exact}

    def region(self, code: str) -> Region:
        """The region of `code` (any case); KeyError if there is none."""
        return self._regions[code.upper()]

    def _ancestry(self, code: str) -> tuple[str, ...]:
        out: list[str] = []
        todo = [code]
        while todo:
            current = todo.pop()
            if current in out or current not in self._regions:
                continue
            out.append(current)
            region = self._regions[current]
            todo.extend(c for c in (region.parent, region.group) if c)
        return tuple(out)

    @cached_property
    def _automaton(self) -> Any:
        """Folded text -> (length, script, alias indices); built on first use, then read-only."""
        by_text: dict[str, list[int]] = {}
        for index, alias in enumerate(self.aliases):
            by_text.setdefault(alias.text, []).append(index)
        automaton = ahocorasick.Automaton()
        for text, indices in by_text.items():
            automaton.add_word(text, (len(text), self.aliases[indices[0]].script, tuple(indices)))
        automaton.make_automaton()
        return automaton

    def scan(self, text: str) -> list[Hit]:
        """Boundary-checked hits of every alias in already folded `text`."""
        hits: list[Hit] = []
        for last, (length, script, indices) in self._automaton.iter(text):
            start, end = last - length + 1, last + 1
            if boundary_ok(text, start, end, script):
                hits.extend((index, start, end) for index in indices)
        return hits

    def tag(self, title: str, summary: str) -> tuple[str, ...]:
        """The sorted region codes an item is about."""
        raw = f"{title}\n{summary}"
        return self.resolve(self.scan(fold(raw)), raw=raw)

    def resolve(self, hits: Iterable[Hit], *, raw: str = "") -> tuple[str, ...]:
        """Turn boundary-checked alias hits into sorted region codes (rules in module doc).

        Hits of several fields can be resolved together when their positions do not overlap
        (fold `title + "\\n" + summary`, or offset the second field). `raw` is the unfolded
        text, consulted only for case-sensitive aliases: without it they never tag.
        """
        present: set[str] = set()
        spans: list[Hit] = []
        for hit in hits:
            alias = self.aliases[hit[0]]
            if alias.context:
                present.add(alias.text)
            else:
                spans.append(hit)
        winners = [self.aliases[index] for index in _longest(spans)]
        tagged = self._expand(c for a in winners if not a.conditional for c in a.codes)
        found = set(tagged)
        checks = _Checks(present, tagged, unicodedata.normalize("NFKC", raw) if raw else "")
        for alias in winners:
            if alias.conditional and checks.holds(alias, self._exact):
                found.update(self._expand(alias.codes))
        return tuple(sorted(found))

    def _expand(self, codes: Iterable[str]) -> set[str]:
        return {c for code in codes for c in self._closure.get(code, (code,))}


@dataclass(slots=True)
class _Checks:
    present: set[str]  # context words seen
    tagged: set[str]  # codes tagged unconditionally
    raw: str

    def holds(self, alias: Alias, exact: dict[str, re.Pattern[str]]) -> bool:
        if alias.exact and not exact[alias.exact].search(self.raw):
            return False
        if any(self.seen(c) for c in alias.unless):
            return False
        return not alias.requires or any(self.seen(c) for c in alias.requires)

    def seen(self, condition: str) -> bool:
        if condition.startswith("@"):
            return condition[1:] in self.tagged
        return condition in self.present


def _longest(spans: list[Hit]) -> list[int]:
    """Indices of the hits that survive longest-match: longest first, then leftmost.

    Hits with exactly the same span as a winner win too (several senses of one name).
    """
    taken: list[tuple[int, int]] = []
    out: list[int] = []
    for index, start, end in sorted(spans, key=lambda h: (h[1] - h[2], h[1])):
        if (start, end) in taken or not any(s < end and start < e for s, e in taken):
            taken.append((start, end))
            out.append(index)
    return out


def _exact_pattern(form: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w){re.escape(form)}(?!\w)")


# --- building the gazetteer from its layers --------------------------------------------------


@dataclass
class _Builder:
    regions: dict[str, Region] = field(default_factory=dict)
    specs: dict[str, list[_Spec]] = field(default_factory=dict)  # folded text -> specs

    def add(self, text: str, codes: tuple[str, ...], lang: str) -> None:
        specs = self.specs.setdefault(fold(text).strip(), [])
        if not any(s.codes == codes and not _is_conditional(s) for s in specs):
            specs.append(_Spec(codes, lang))

    def replace(self, text: str, specs: list[_Spec]) -> None:
        self.specs[fold(text).strip()] = specs

    def remove(self, text: str, code: str) -> bool:
        """Take `code` off every alias spelled `text`; whether there was one."""
        specs = self.specs.get(fold(text).strip(), [])
        hit = [s for s in specs if code in s.codes]
        for spec in hit:
            spec.codes = tuple(c for c in spec.codes if c != code)
            if not spec.codes:
                specs.remove(spec)
        return bool(hit)

    def build(self) -> Gazetteer:
        aliases: list[Alias] = []
        context: dict[str, None] = {}
        for text, specs in self.specs.items():
            script = term_script(text)
            for spec in specs:
                aliases.append(Alias(text, spec.codes, script, spec.lang, *_conditions(spec)))
                context.update(dict.fromkeys(c for c in (*spec.requires, *spec.unless)))
        for word in context:
            if not word.startswith("@"):
                aliases.append(Alias(word, (), term_script(word), "", context=True))
        return Gazetteer(dict(self.regions), tuple(aliases))


def _is_conditional(spec: _Spec) -> bool:
    return bool(spec.requires or spec.unless or spec.exact)


def _conditions(spec: _Spec) -> tuple[tuple[str, ...], tuple[str, ...], str]:
    return spec.requires, spec.unless, spec.exact


def _script_lang(text: str) -> str:
    script = term_script(fold(text))
    if script is Script.HANGUL:
        return "ko"
    if script is Script.HAN:
        return "ja" if re.search("[\u3040-\u30ff]", text) else "zh"
    return "en"


def demonym_forms(demonym: str) -> tuple[str, ...]:
    """`Russian` -> also `Russians`; `Chinese`, `British`, `Thai`... have no `s` plural here."""
    if not demonym or demonym.endswith(_NO_PLURAL):
        return (demonym,) if demonym else ()
    return (demonym, demonym + "s")


def _country_layer(builder: _Builder, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        code = row["code"]
        builder.regions[code] = Region(code, row["name"])
        forms = [form for demonym in row["demonyms"] for form in demonym_forms(demonym)]
        names = [*row["en"], row["capital"], *forms]
        for name in filter(None, names):
            builder.add(name, (code,), "en")
        for lang in ("ja", "zh", "ko"):
            for name in row[lang]:
                builder.add(name, (code,), lang)


# --- the layer files: curated.yaml and the user's rules/regions.yaml -------------------------

TOP_KEYS = ("regions", "compounds", "ambiguous", "blockers")
REGION_KEYS = ("name", "parent", "group", "aliases", "remove")
SENSE_KEYS = ("code", "codes", "requires", "unless", "exact")
_ONE_CODE = "expected one region code or a list of them"
_HINT = "see the comments at the top of rules/regions.yaml for the format"


class _Layer:
    """Validates one layer file and applies it to a builder; every error names file:line:col.

    Order inside a file: `regions` (names, parents, aliases added, aliases removed), then
    `compounds`, `ambiguous` and `blockers`, each of which replaces whatever an earlier layer
    or section said about the same text.
    """

    def __init__(self, path: str, builder: _Builder) -> None:
        self.path = path
        self.builder = builder
        self.known: set[str] = set(builder.regions)

    def fail(self, message: str, node: Any, key: Any = None, hint: str | None = _HINT) -> Any:
        line, column = _pos(node, key)
        raise ConfigError(message, path=self.path, line=line, column=column, hint=hint)

    def apply(self, doc: Any) -> None:
        if doc is None:
            return
        top = self.mapping(doc, None, None, "the file", TOP_KEYS)
        regions = self.mapping(top.get("regions") or {}, top, "regions", "regions", ())
        codes = {key: self.code_key(regions, key) for key in regions}
        self.known.update(codes.values())
        for key, code in codes.items():
            self.region(code, self.mapping(regions[key], regions, key, code, REGION_KEYS))
        compounds = self.mapping(top.get("compounds") or {}, top, "compounds", "compounds", ())
        for text in compounds:
            codes_ = self.codes(compounds[text], compounds, text)
            self.builder.replace(self.text(text, compounds, text), [_Spec(codes_, _script_lang(text))])
        ambiguous = self.mapping(top.get("ambiguous") or {}, top, "ambiguous", "ambiguous", ())
        for text in ambiguous:
            self.builder.replace(self.text(text, ambiguous, text), self.senses(ambiguous, text))
        for text in self.strings(top.get("blockers"), top, "blockers"):
            self.builder.replace(text, [_Spec((), _script_lang(text))])

    def mapping(self, node: Any, parent: Any, key: Any, what: str, known: tuple[str, ...]) -> Any:
        if not isinstance(node, dict):
            self.fail(f"{what} must be a mapping (key: value lines)", parent, key)
        for name in node if known else ():
            if name not in known:
                self.fail(f"unknown key {name!r} in {what}", node, name, _did_you_mean(name, known))
        return node

    def code_key(self, node: Any, key: Any) -> str:
        code = str(key).strip().upper()
        if not _CODE_RE.fullmatch(code):
            self.fail(f"region code {key!r} must be letters, digits and '-'", node, key)
        return code

    def code(self, value: Any, node: Any, key: Any) -> str:
        code = str(value).strip().upper()
        if code not in self.known:
            self.fail(f"unknown region code {value!r}", node, key, self._suggest_code(str(value)))
        return code

    def _suggest_code(self, value: str) -> str:
        specs = self.builder.specs.get(fold(value), [])
        named = sorted({c for s in specs for c in s.codes})
        if named:
            return f"{value!r} is a name of {', '.join(named)}; use the code"
        return _did_you_mean(value.upper(), tuple(self.known)) or "define it under regions:"

    def codes(self, value: Any, node: Any, key: Any) -> tuple[str, ...]:
        if not isinstance(value, list):
            return (self.code(value, node, key),) if value else self.fail(_ONE_CODE, node, key)
        if not value:
            self.fail(_ONE_CODE, node, key)
        return tuple(self.code(item, value, index) for index, item in enumerate(value))

    def text(self, value: Any, node: Any, key: Any) -> str:
        if not isinstance(value, str) or not fold(value).strip():
            self.fail(f"expected a non-empty name, got {value!r}", node, key)
        return str(value)

    def strings(self, value: Any, node: Any, key: Any) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(f"{key} must be a list of names", node, key)
        return [self.text(item, value, i) for i, item in enumerate(value)]

    def region(self, code: str, node: Any) -> None:
        old = self.builder.regions.get(code)
        if old is None and "name" not in node:
            self.fail(f"new region {code} needs a name", node, None, "add name: ...")
        name = self.text(node["name"], node, "name") if "name" in node else old.name  # type: ignore[union-attr]
        parent = self.code(node["parent"], node, "parent") if node.get("parent") else None
        group = self.code(node["group"], node, "group") if node.get("group") else None
        keep = old or Region(code, name)
        parent = parent if "parent" in node else keep.parent
        group = group if "group" in node else keep.group
        self.builder.regions[code] = Region(code, name, parent, group)
        self.region_aliases(code, node)

    def region_aliases(self, code: str, node: Any) -> None:
        aliases = self.mapping(node.get("aliases") or {}, node, "aliases", "aliases", LANGS)
        for lang in aliases:
            for name in self.strings(aliases[lang], aliases, lang):
                self.builder.add(name, (code,), lang)
        removed = self.strings(node.get("remove"), node, "remove")
        for index, name in enumerate(removed):
            if not self.builder.remove(name, code):
                self.fail(f"{name!r} is not an alias of {code}", node["remove"], index, None)

    def senses(self, node: Any, text: Any) -> list[_Spec]:
        senses = node[text] if isinstance(node[text], list) else [node[text]]
        specs = []
        for index, sense in enumerate(senses):
            where = f"sense {index + 1} of {text!r}"
            sense = self.mapping(sense, senses, index, where, SENSE_KEYS)
            codes = self.codes(sense.get("code", sense.get("codes")), sense, "code")
            requires = self.conditions(sense, "requires")
            unless = self.conditions(sense, "unless")
            exact = unicodedata.normalize("NFKC", str(text)) if sense.get("exact") else ""
            specs.append(_Spec(codes, _script_lang(str(text)), requires, unless, exact))
        return specs

    def conditions(self, sense: Any, key: str) -> tuple[str, ...]:
        out = []
        for index, item in enumerate(self.strings(sense.get(key), sense, key)):
            if item.startswith("@"):
                out.append("@" + self.code(item[1:], sense[key], index))
            else:
                out.append(fold(item).strip())
        return tuple(out)


def _pos(node: Any, key: Any) -> tuple[int | None, int | None]:
    """1-based line and column of `node[key]` (or of `node`) when ruamel recorded them."""
    lc = getattr(node, "lc", None)
    try:
        if lc is None:
            return None, None
        if key is None:
            line, column = lc.line, lc.col
        elif isinstance(node, list):
            line, column = lc.item(key)
        else:
            line, column = lc.key(key)
    except (KeyError, IndexError, TypeError):
        return None, None
    return line + 1, column + 1


def _did_you_mean(name: str, known: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(str(name), list(known), n=1)
    return f"did you mean {close[0]!r}?" if close else None


# --- loading ---------------------------------------------------------------------------------


def load_gazetteer(overrides: Path | None = None) -> Gazetteer:
    """The built-in gazetteer, with `overrides` (a `rules/regions.yaml`) applied if given.

    Raises ConfigError naming the file, line and column when the overrides are invalid.
    """
    if overrides is None:
        return _builtin()
    builder = _base_builder()
    _Layer(str(overrides), builder).apply(_read_yaml(overrides.read_text, str(overrides)))
    return builder.build()


@cache
def _builtin() -> Gazetteer:
    return _base_builder().build()


def _base_builder() -> _Builder:
    """A fresh copy of the built-in layers (parsed once, copied because layers mutate it)."""
    base = _parsed_base()
    specs = {text: [_Spec(s.codes, s.lang, s.requires, s.unless, s.exact) for s in v]
             for text, v in base.specs.items()}
    return _Builder(dict(base.regions), specs)


@cache
def _parsed_base() -> _Builder:
    data = resources.files("monitor") / "data" / "gazetteer"
    builder = _Builder()
    countries = json.loads((data / "countries.json").read_text(encoding="utf-8"))
    _country_layer(builder, countries["countries"])
    curated = data / "curated.yaml"
    _Layer(str(curated), builder).apply(_curated(curated, data / "curated.json"))
    return builder


def _curated(source: Any, cache: Any) -> Any:
    """curated.yaml's data: from its JSON cache when that was made from this very text."""
    text = source.read_text(encoding="utf-8")
    try:
        cached = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cached = {}
    if cached.get("source_sha256") == hashlib.sha256(text.encode()).hexdigest():
        return cached["data"]
    return _read_yaml(lambda encoding: text, str(source))


def _read_yaml(read: Any, path: str) -> Any:
    try:
        text = read(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the file: {exc.strerror}", path=path) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError("the file is not UTF-8 text", path=path) from exc
    try:
        return YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(problem, path=path, line=line, column=column) from exc
    except YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", path=path) from exc
