"""The gazetteer's files: the built-in layers and the user's `rules/regions.yaml`.

Three layers, each applied over the one before (`monitor.regions` turns the result into a
`Gazetteer`):

1. `data/gazetteer/countries.json`: every ISO 3166-1 country with its English names, capital,
   demonyms and Japanese/Chinese/Korean names, generated from maintained packages
   (`python -m monitor.data.gazetteer.build`);
2. `data/gazetteer/curated.yaml`: what those packages lack or get wrong for this news;
3. the user's `rules/regions.yaml`, in the same format as layer 2:

    regions:                       # add to or change a region, or define a new code
      TW:
        name: Taiwan               # required for a new code
        parent: null               # a tag of this region implies its parent...
        group: null                # ...and its group (a sea or area code)
        aliases: {en: [...], ja: [...], zh: [...], ko: [...]}
        remove: [Formosa]          # take this code off these names
    compounds:                     # a name that stands for several regions
      日米: [JP, US]
    ambiguous:                     # a name that tags only in context
      Georgia:
        - {code: GE, requires: [Tbilisi, "@RU"], unless: [Atlanta], exact: false}
    blockers: [New Mexico]         # longer names that tag nothing

Within a file, `regions` is applied first; then `compounds`, `ambiguous` and `blockers`, each
of which replaces whatever was said before about the same (folded) text. Every error is a
ConfigError with file, line and column; unknown keys suggest the closest known one.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

from monitor.errors import ConfigError
from monitor.match.textnorm import Script, fold, term_script
from monitor.yamlfile.check import parse_yaml, read_text

LANGS = ("en", "ja", "zh", "ko")
_CODE_RE = re.compile(r"[A-Z][A-Z0-9-]{1,15}")
_NO_PLURAL = ("s", "sh", "ch", "ese", "x", "z", "i")


@dataclass(frozen=True, slots=True)
class Region:
    code: str
    name: str
    parent: str | None = None  # administering country: a tag of this region implies it
    group: str | None = None  # sea or area this belongs to: implied too


@dataclass(slots=True)
class Spec:
    """One meaning of a folded text while the layers are applied (codes change on `remove`)."""

    codes: tuple[str, ...]
    lang: str
    requires: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()
    exact: str = ""


@dataclass
class Layers:
    """The regions and the meanings of every folded text, as the layers are applied."""

    regions: dict[str, Region] = field(default_factory=dict)
    specs: dict[str, list[Spec]] = field(default_factory=dict)  # folded text -> specs

    def add(self, text: str, codes: tuple[str, ...], lang: str) -> None:
        specs = self.specs.setdefault(fold(text).strip(), [])
        if not any(s.codes == codes and not _is_conditional(s) for s in specs):
            specs.append(Spec(codes, lang))

    def replace(self, text: str, specs: list[Spec]) -> None:
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

    def copy(self) -> Layers:
        specs = {t: [replace(s) for s in v] for t, v in self.specs.items()}
        return Layers(dict(self.regions), specs)


def _is_conditional(spec: Spec) -> bool:
    return bool(spec.requires or spec.unless or spec.exact)


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


def _country_layer(layers: Layers, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        code = row["code"]
        layers.regions[code] = Region(code, row["name"])
        forms = [form for demonym in row["demonyms"] for form in demonym_forms(demonym)]
        names = [*row["en"], row["capital"], *forms]
        for name in filter(None, names):
            layers.add(name, (code,), "en")
        for lang in ("ja", "zh", "ko"):
            for name in row[lang]:
                layers.add(name, (code,), lang)


# --- the layer files: curated.yaml and the user's rules/regions.yaml -------------------------

TOP_KEYS = ("regions", "compounds", "ambiguous", "blockers")
REGION_KEYS = ("name", "parent", "group", "aliases", "remove")
SENSE_KEYS = ("code", "codes", "requires", "unless", "exact")
_ONE_CODE = "expected one region code or a list of them"
_HINT = "see the comments at the top of rules/regions.yaml for the format"


class OverrideReader:
    """What the readers of the gazetteer layers and the entity layers share: an error at a
    node's key or value (file:line:col, with the format's hint), and mappings whose keys must
    be known. A subclass sets `hint`."""

    hint = _HINT

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(
        self, message: str, node: Any, key: Any, hint: str | None = "", *, value: bool = False
    ) -> NoReturn:
        """Raise at `node[key]`: its key, or with `value=True` its value. `hint` "" means the
        format's own hint; None, no hint."""
        line, column = _pos(node, key, value)
        hint = self.hint if hint == "" else hint
        raise ConfigError(message, path=self.path, line=line, column=column, hint=hint)

    def mapping(self, node: Any, parent: Any, key: Any, what: str, known: tuple[str, ...]) -> Any:
        if not isinstance(node, dict):
            self.fail(f"{what} must be a mapping (key: value lines)", parent, key, value=True)
        for name in node if known else ():
            if name not in known:
                self.fail(f"unknown key {name!r} in {what}", node, name, _did_you_mean(name, known))
        return node


class _Layer(OverrideReader):
    """Validates one layer file and applies it to `layers`; every error names file:line:col.

    Order inside a file: `regions` (names, parents, aliases added, aliases removed), then
    `compounds`, `ambiguous` and `blockers`, each of which replaces whatever an earlier layer
    or section said about the same text.
    """

    def __init__(self, path: str, layers: Layers) -> None:
        super().__init__(path)
        self.layers = layers
        self.known: set[str] = set(layers.regions)

    def apply(self, doc: Any) -> None:
        if doc is None:
            return
        top = self.mapping(doc, None, None, "the file", TOP_KEYS)
        regions = self.mapping(top.get("regions") or {}, top, "regions", "regions", ())
        codes = {key: self.code_key(regions, key) for key in regions}
        self.known.update(codes.values())
        for key, code in codes.items():
            node = self.mapping(regions[key], regions, key, code, REGION_KEYS)
            if code not in self.layers.regions and "name" not in node:
                self.fail(f"new region {code} needs a name", regions, key, "add name: ...")
            self.region(code, node)
        compounds = self.mapping(top.get("compounds") or {}, top, "compounds", "compounds", ())
        for text in compounds:
            codes_ = self.codes(compounds[text], compounds, text)
            self.layers.replace(
                self.text(text, compounds, text), [Spec(codes_, _script_lang(text))]
            )
        ambiguous = self.mapping(top.get("ambiguous") or {}, top, "ambiguous", "ambiguous", ())
        for text in ambiguous:
            self.layers.replace(self.text(text, ambiguous, text), self.senses(ambiguous, text))
        for text in self.strings(top.get("blockers"), top, "blockers"):
            self.layers.replace(text, [Spec((), _script_lang(text))])

    def code_key(self, node: Any, key: Any) -> str:
        code = str(key).strip().upper()
        if not _CODE_RE.fullmatch(code):
            self.fail(f"region code {key!r} must be letters, digits and '-'", node, key)
        return code

    def code(self, value: Any, node: Any, key: Any) -> str:
        code = str(value).strip().upper()
        if code not in self.known:
            hint = self._suggest_code(str(value))
            self.fail(f"unknown region code {value!r}", node, key, hint, value=True)
        return code

    def _suggest_code(self, value: str) -> str:
        specs = self.layers.specs.get(fold(value), [])
        named = sorted({c for s in specs for c in s.codes})
        if named:
            return f"{value!r} is a name of {', '.join(named)}; use the code"
        return _did_you_mean(value.upper(), tuple(self.known)) or "define it under regions:"

    def codes(self, value: Any, node: Any, key: Any) -> tuple[str, ...]:
        if not isinstance(value, list):
            if not value:
                self.fail(_ONE_CODE, node, key, value=True)
            return (self.code(value, node, key),)
        if not value:
            self.fail(_ONE_CODE, node, key, value=True)
        return tuple(self.code(item, value, index) for index, item in enumerate(value))

    def text(self, value: Any, node: Any, key: Any) -> str:
        if not isinstance(value, str) or not fold(value).strip():
            self.fail(f"expected a non-empty name, got {value!r}", node, key)
        return str(value)

    def strings(self, value: Any, node: Any, key: Any) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(f"{key} must be a list of names", node, key, value=True)
        return [self.text(item, value, i) for i, item in enumerate(value)]

    def region(self, code: str, node: Any) -> None:
        old = self.layers.regions.get(code)
        name = self.text(node["name"], node, "name") if "name" in node else old.name  # type: ignore[union-attr]
        parent = self.code(node["parent"], node, "parent") if node.get("parent") else None
        group = self.code(node["group"], node, "group") if node.get("group") else None
        keep = old or Region(code, name)
        parent = parent if "parent" in node else keep.parent
        group = group if "group" in node else keep.group
        self.layers.regions[code] = Region(code, name, parent, group)
        self.region_aliases(code, node)

    def region_aliases(self, code: str, node: Any) -> None:
        aliases = self.mapping(node.get("aliases") or {}, node, "aliases", "aliases", LANGS)
        for lang in aliases:
            for name in self.strings(aliases[lang], aliases, lang):
                self.layers.add(name, (code,), lang)
        removed = self.strings(node.get("remove"), node, "remove")
        for index, name in enumerate(removed):
            if not self.layers.remove(name, code):
                self.fail(f"{name!r} is not an alias of {code}", node["remove"], index, None)

    def senses(self, node: Any, text: Any) -> list[Spec]:
        senses = node[text] if isinstance(node[text], list) else [node[text]]
        specs = []
        for index, sense in enumerate(senses):
            where = f"sense {index + 1} of {text!r}"
            sense = self.mapping(sense, senses, index, where, SENSE_KEYS)
            codes = self.codes(sense.get("code", sense.get("codes")), sense, "code")
            requires = self.conditions(sense, "requires")
            unless = self.conditions(sense, "unless")
            exact = unicodedata.normalize("NFKC", str(text)) if sense.get("exact") else ""
            specs.append(Spec(codes, _script_lang(str(text)), requires, unless, exact))
        return specs

    def conditions(self, sense: Any, key: str) -> tuple[str, ...]:
        out = []
        for index, item in enumerate(self.strings(sense.get(key), sense, key)):
            if item.startswith("@"):
                out.append("@" + self.code(item[1:], sense[key], index))
            else:
                out.append(fold(item).strip())
        return tuple(out)


def _pos(node: Any, key: Any, value: bool) -> tuple[int | None, int | None]:
    """1-based line and column of `node[key]` (its key, or its value) when ruamel has them."""
    lc = getattr(node, "lc", None)
    try:
        if lc is None:
            return None, None
        if key is None:
            line, column = lc.line, lc.col
        elif isinstance(node, list):
            line, column = lc.item(key)
        else:
            line, column = lc.value(key) if value else lc.key(key)
    except (KeyError, IndexError, TypeError):
        return None, None
    return line + 1, column + 1


def _did_you_mean(name: str, known: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(str(name), list(known), n=1)
    return f"did you mean {close[0]!r}?" if close else None


# --- reading -----------------------------------------------------------------------------


def load_layers(overrides: Path | None = None) -> Layers:
    """The built-in layers, with `overrides` (a `rules/regions.yaml`) applied if given.

    Raises ConfigError naming the file, line and column when the overrides are invalid.
    """
    if overrides is None:
        return _builtin_layers()
    layers = _builtin_layers().copy()
    # The checks every file under rules/ gets: a regular file, UTF-8 (bad bytes at their
    # line and column), YAML not nested too deep.
    _Layer(str(overrides), layers).apply(parse_yaml(read_text(overrides), overrides))
    return layers


@cache
def _builtin_layers() -> Layers:
    """Parsed once per process; callers that change it work on a `copy()`."""
    data = resources.files("monitor") / "data" / "gazetteer"
    layers = Layers()
    countries = json.loads((data / "countries.json").read_text(encoding="utf-8"))
    _country_layer(layers, countries["countries"])
    curated = data / "curated.yaml"
    _Layer(str(curated), layers).apply(_curated(curated, data / "curated.json"))
    return layers


def _curated(source: Any, cache: Any) -> Any:
    """curated.yaml's data: from its JSON cache when that was made from this very text."""
    text = source.read_text(encoding="utf-8")
    try:
        cached = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cached = {}
    if cached.get("source_sha256") == hashlib.sha256(text.encode()).hexdigest():
        return cached["data"]
    return parse_yaml(text, Path(str(source)))
