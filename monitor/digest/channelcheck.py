"""Value checks for `rules/channels.yaml`: ids, variable names, addresses, URLs, and secrets.

Each `as_*` converter raises `Invalid` without knowing where the value came from (see
`yamlcheck`); the loader in `channels` adds the place.

Secrets never live in the file. `secret_problem` spots a key that holds one (`password:`,
`secret:`, `token:`, `api_key:`...; `password_env` only names a variable and is fine), a
header carrying a credential (`Authorization`), and a URL with `user:password@` or a token in
its query string.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterator
from email.utils import getaddresses, parseaddr
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlsplit

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from monitor.yamlfile.check import Invalid, as_choice, as_int, as_text

# Shared with feeds.yaml, so defined with the other shared checks; `channels` imports it here.
from monitor.yamlfile.check import as_env_name as as_env_name

MAX_ID_LENGTH = 64
RULE_RE = re.compile(r"[a-z0-9][a-z0-9-]*")
# ISO 3166-1 alpha-2 (`TW`) or a gazetteer code (`TW-KIN`, `senkaku`), as in feeds.yaml.
REGION_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{1,39}")
HEADER_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an RFC 9110 token
_DOMAIN_LABEL_RE = re.compile(r"(?!-)[\w-]{1,63}(?<!-)")  # \w: IDN labels are fine
# A key that holds a secret itself (`*_env` names a variable and is fine). `-` counts as `_`.
_SECRET_KEY_RE = re.compile(
    r"(^|_)(pass|password|passwd|pwd|secret|token|api_?key|private_?key|credentials?)$"
)
_SECRET_HEADERS = ("authorization", "proxy_authorization", "cookie")
# Set by the sender (deliver) itself; a receiver's extra headers must not override them.
RESERVED_HEADERS: tuple[str, ...] = ("content-type", "content-length", "host", "user-agent")
RESERVED_HEADERS += ("webhook-id", "webhook-timestamp", "webhook-signature")


def as_id(what: str, value: Any) -> str:
    text = as_text(what, value)
    if not RULE_RE.fullmatch(text) or len(text) > MAX_ID_LENGTH:
        hint = f"lower-case letters, digits and '-', at most {MAX_ID_LENGTH} characters"
        raise Invalid(f"bad {what} {text!r}", hint)
    return text


def _address_problem(text: str) -> str | None:
    """What is wrong with one email address (`desk@example.org` or `Desk <desk@...>`)."""
    # A line break would end the header and start another (header injection); Unicode's own
    # line separators count, as some mail tools break lines there too.
    if any(ord(c) < 32 or c in "\x7f\x85\u2028\u2029" for c in text):
        return "it contains a line break or control character"
    if len(getaddresses([text])) > 1:
        return "it holds several addresses: write one per list entry"
    address = parseaddr(text)[1]
    if address.count("@") != 1 or " " in address:
        return "it is not of the form name@domain"
    local, domain = address.split("@")
    labels = domain.split(".")
    if not local or not all(_DOMAIN_LABEL_RE.fullmatch(label) for label in labels):
        return f"{domain!r} is not a valid domain"
    if len(labels) < 2 and domain != "localhost":
        return f"the domain {domain!r} has no dot"
    return None


def as_address(what: str, value: Any) -> str:
    text = as_text(what, value)
    if problem := _address_problem(text):
        raise Invalid(f"bad email address {text!r} in '{what}': {problem}", "e.g. desk@example.org")
    return text


def as_addresses(what: str, value: Any) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list):
        raise Invalid(f"'{what}' must be a list of email addresses, got {value!r}")
    for index, one in enumerate(values):
        try:
            as_address(what, one)
        except Invalid as error:
            raise Invalid(
                error.message, error.hint, None if values is not value else index
            ) from None
    return tuple(str(one).strip() for one in values)


def as_host(value: Any) -> str:
    host = as_text("host", value)
    if re.search(r"[\s/@]", host):
        raise Invalid(
            f"'host' must be a host name or address, got {host!r}", "e.g. smtp.example.org"
        )
    return host


def _http_url(key: str, url: str, example: str) -> SplitResult:
    """The parts of `url`, which must be an absolute http(s) URL with a host and a usable port."""
    try:
        parts = urlsplit(url)
        port_ok = parts.port != 0
    except ValueError:
        port_ok = False
    if not port_ok or parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid(f"'{key}' must be an absolute http(s) URL, got {url!r}", example)
    return parts


def as_url(value: Any) -> str:
    url = as_text("url", value)
    parts = _http_url("url", url, "e.g. https://...")
    if parts.username is not None:
        hint = "remove them; webhooks are authenticated by signature: use secret_env"
        raise Invalid("the webhook 'url' carries credentials (user@)", hint)
    return url


def as_web_url(value: Any) -> str:
    """`web_url`: the console's address as the receivers reach it; digests link each story
    to `<web_url>/stories/<id>`, so it is kept without its trailing `/` and may hold no query
    or fragment (the path is added after it)."""
    url = as_text("web_url", value).strip()
    example = "e.g. web_url: https://monitor.example.org/"
    parts = _http_url("web_url", url, example)
    if parts.query or parts.fragment or "?" in url or "#" in url or re.search(r"\s", url):
        raise Invalid(
            f"'web_url' must be a plain address (no query, fragment or spaces), got {url!r}",
            example,
        )
    return url.rstrip("/")


def as_list(what: str, choices: tuple[str, ...], value: Any) -> tuple[str, ...]:
    """A list of `choices` without repeats; one bare word counts as a list of one."""
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values:
        raise Invalid(f"'{what}' must be a list such as [{choices[0]}], got {value!r}")
    for index, one in enumerate(values):
        at = None if values is not value else index
        if one in values[:index]:
            raise Invalid(f"{one!r} is listed twice in '{what}'", None, at)
        try:
            as_choice(what, choices, one)
        except Invalid as error:
            raise Invalid(error.message, error.hint, at) from None
    return tuple(str(one) for one in values)


# --- secrets ---------------------------------------------------------------------------------

_SECRET_HINT = {
    "pass": "remove it; write 'password_env: SMTP_PASSWORD' and set that variable",
    "secret": "remove it; write 'secret_env: HOOK_SECRET' and set that variable",
}
_OTHER_SECRET_HINT = "secrets never live in this file: name a variable with password_env/secret_env"


def secret_hint(key: str) -> str:
    return next((hint for word, hint in _SECRET_HINT.items() if word in key), _OTHER_SECRET_HINT)


def walk(node: Any) -> Iterator[tuple[Any, Any, Any]]:
    """(parent, key or index, value) of every value under `node`, labels left out: rules'
    free labels may have any name."""
    items = node.items() if isinstance(node, CommentedMap) else enumerate(node)
    for key, value in items:
        yield node, key, value
        if isinstance(value, CommentedMap | CommentedSeq) and key != "labels":
            yield from walk(value)


def secret_in_key(key: Any) -> tuple[str, str] | None:
    """(message, hint) when a mapping key holds a secret itself."""
    name = str(key).lower().replace("-", "_")
    if _SECRET_KEY_RE.search(name):
        return f"{str(key)!r} writes a secret into the file", secret_hint(name)
    if name in _SECRET_HEADERS:
        return f"the header {str(key)!r} would put a credential into the file", _OTHER_SECRET_HINT
    return None


def secret_in_url(value: Any) -> tuple[str, str] | None:
    """(message, hint) when a text is a URL with a password or a token in it."""
    if not isinstance(value, str) or "://" not in value:
        return None
    try:
        parts = urlsplit(value.strip())
        has_password = parts.password is not None
        query = parse_qsl(parts.query)
    except ValueError:  # not a URL after all: the value's own check will say so
        return None
    hint = "remove it from the URL; webhooks are authenticated by signature: use secret_env"
    if has_password:
        return "a URL with 'user:password@' writes a secret into the file", hint
    if any(_SECRET_KEY_RE.search(k.lower().replace("-", "_")) for k, _ in query):
        return "a URL with a token in its query writes a secret into the file", hint
    return None


# ISO 639-1: the codes a feed's language starts with (`zh` in `zh-tw`).
_ISO_639_1 = """
    aa ab ae af ak am an ar as av ay az ba be bg bi bm bn bo br bs ca ce ch co cr cs cu
    cv cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he
    hi ho hr ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko
    kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd
    ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se
    sg sh si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw
    ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu
"""
LANGUAGE_CODES = frozenset(_ISO_639_1.split())
# Country codes written where a language code belongs, the usual slip.
_COUNTRY_SLIPS = {"jp": "ja", "cn": "zh", "tw": "zh-tw", "kp": "ko", "gb": "en", "us": "en"}
_LANG_RE = re.compile(r"([a-z]{2})(-[a-z0-9]{1,8})*")


def as_languages(value: Any) -> tuple[str, ...]:
    """`languages: [en, ja]`: language codes (ISO 639-1, optionally with a region, `zh-tw`),
    in order of preference, each once."""
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values:
        raise Invalid(f"'languages' must be a list such as [en, ja], got {value!r}")
    seen: list[str] = []
    for index, one in enumerate(values):
        at = None if values is not value else index
        code = str(one).strip().lower() if isinstance(one, str) else ""
        found = _LANG_RE.fullmatch(code)
        if not found or found.group(1) not in LANGUAGE_CODES:
            slip = _COUNTRY_SLIPS.get(code)
            hint = (
                f"did you mean {slip!r}?" if slip else "two-letter ISO 639-1 codes: en, ja, zh, ko"
            )
            raise Invalid(f"unknown language code {one!r} in 'languages'", hint, at)
        if code in seen:
            raise Invalid(f"{code!r} is listed twice in 'languages'", None, at)
        seen.append(code)
    return tuple(seen)


def as_port(what: str, value: Any) -> int:
    port = as_int(what, 1, value)
    if port > 65535:
        raise Invalid(f"'{what}' must be between 1 and 65535, got {port}")
    return port


def did_you_mean(name: str, known: Collection[str], what: str) -> str | None:
    if not known:
        return None
    by_fold = {k.casefold(): k for k in known}
    close = difflib.get_close_matches(name.casefold(), by_fold, n=1)
    if close:
        return f"did you mean {by_fold[close[0]]!r}?"
    shown = sorted(known)
    return f"known {what}: " + ", ".join(shown[:10]) + (", ..." if len(shown) > 10 else "")


def as_known(
    what: str, pattern: re.Pattern[str], known: Collection[str] | None, value: Any
) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values:
        raise Invalid(f"'{what}' must be a list such as [a, b], got {value!r}")
    for index, one in enumerate(values):
        at = None if values is not value else index
        if not isinstance(one, str) or not pattern.fullmatch(one):
            raise Invalid(f"bad entry {one!r} in '{what}'", "one id or code per entry", at)
        if known is not None and one not in known:
            raise Invalid(f"unknown {what[:-1]} {one!r}", did_you_mean(one, known, what), at)
    return tuple(str(one) for one in values)
