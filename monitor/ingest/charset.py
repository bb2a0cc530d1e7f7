"""Charset decoding of XML feed bodies, for the parse stage.

Its own module because it is one self-contained step with its own tables: `parse` calls
`decode` before feedparser sees a body, and feedparser then gets UTF-8 bytes.

XML is decoded here, not by feedparser: feedparser follows RFC 3023 to the letter, so a
server default of `charset=iso-8859-1` turns a Shift_JIS feed into mojibake, and a Big5,
Shift_JIS or EUC-KR feed using the Windows extensions (`①`, `€`, `똠`) falls through to
windows-1252. We try the declared encodings (HTTP charset first, XML declaration second,
except that a single-byte HTTP charset yields to a declaration, since such a charset decodes
any bytes and is usually a server default), each widened to its common superset (gb2312 ->
gb18030, shift_jis -> cp932...), then UTF-8.
"""

from __future__ import annotations

import codecs
import re

# Python lacks these WHATWG labels; servers send them.
_LABEL_ALIASES = {
    "windows-31j": "cp932",
    "x-sjis": "shift_jis",
    "x-euc-jp": "euc_jp",
    "x-gbk": "gbk",
}

# Declared codec -> codecs to try, strictest first. The strict codec comes first where the
# superset maps a character differently (shift_jis keeps 〜 as WAVE DASH, cp932 makes it a
# full-width tilde); the superset then catches the vendor extensions real feeds use.
# gb2312 goes straight to gb18030, as browsers and feedparser do: "GB2312" feeds are GBK in
# practice (朱镕基), and gb18030 gives the middle dot in names (·) that gb2312 gets wrong.
_WIDER: dict[str, tuple[str, ...]] = {
    "shift_jis": ("shift_jis", "cp932"),
    "euc_jp": ("euc_jp", "euc_jis_2004"),
    "gb2312": ("gb18030",),
    "gbk": ("gb18030",),
    "big5": ("big5", "cp950", "big5hkscs"),
    "euc_kr": ("euc_kr", "cp949"),
    # Browsers read these three labels as windows-1252: curly quotes arrive as 0x93/0x94.
    "ascii": ("cp1252", "latin-1"),
    "iso8859-1": ("cp1252", "latin-1"),
    "cp1252": ("cp1252", "latin-1"),
}
_SINGLE_BYTE = frozenset({"ascii", "iso8859-1", "cp1252"})

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")


def decode(body: bytes, content_type: str) -> tuple[str, str | None]:
    """Decode an XML body by its BOM, declared charsets and UTF-8; return (text, warning)."""
    for bom, codec in _BOMS:
        if body.startswith(bom):
            # A BOM cannot be there by accident, so it beats every declaration.
            return _decode_or_replace(
                body[len(bom) :], codec, f"{codec} (as its byte order mark says)"
            )
    declared = _declared(content_type, body)
    if not declared:
        return _decode_or_replace(body, "utf-8", "UTF-8 (it declares no encoding)")
    label, where = declared[0]
    # A single-byte charset decodes any bytes and is usually a server default: it yields to a
    # declaration in the document (the warning still names it).
    if len(declared) == 2 and _codec_name(label) in _SINGLE_BYTE:
        declared.reverse()
    text, codec = _first_that_decodes(body, [c for lbl, _ in declared for c in _codecs(lbl)])
    if text is None:
        return _decode_or_replace(body, "utf-8", f"{label} ({where}) nor UTF-8")
    if codec in _codecs(label) or body.isascii():
        return text, None
    return text, f"the feed is declared as {label} ({where}) but is {codec}; read as {codec}"


def _declared(content_type: str, body: bytes) -> list[tuple[str, str]]:
    """The declared encodings as (label, where), HTTP first as RFC 7303 says."""
    match = _XML_ENCODING.match(body[:1024])
    prolog = match.group(1).decode("ascii").lower() if match else ""
    found = [(_charset(content_type), "HTTP Content-Type charset"), (prolog, "XML declaration")]
    return [(label, where) for label, where in found if label]


def _charset(content_type: str) -> str:
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip("\"'").lower()
    return ""


def _codec_name(label: str) -> str:
    label = _LABEL_ALIASES.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return ""


def _codecs(label: str) -> tuple[str, ...]:
    """The codecs to try for a declared label; none for unknown or ASCII-incompatible ones."""
    name = _codec_name(label)
    # Without a BOM the bytes are ASCII-compatible (we could read the declaration), so a
    # declared UTF-16/32 is a lie that would decode into garbage; "base64" is no text codec.
    try:
        if not name or codecs.encode("<?xml", name) != b"<?xml":
            return ()
    except (TypeError, ValueError):
        return ()
    return _WIDER.get(name, (name,))


def _first_that_decodes(body: bytes, candidates: list[str]) -> tuple[str | None, str]:
    # UTF-8 comes last: the XML default, and invalid UTF-8 is almost never valid by chance.
    for codec in dict.fromkeys([*candidates, "utf-8"]):
        try:
            return body.decode(codec), codec
        except UnicodeDecodeError:
            continue
    return None, ""


def _decode_or_replace(body: bytes, codec: str, expected: str) -> tuple[str, str | None]:
    try:
        return body.decode(codec), None
    except UnicodeDecodeError:
        text = body.decode(codec, errors="replace")
    return text, f"the feed is not valid {expected}; undecodable bytes were replaced by U+FFFD"
