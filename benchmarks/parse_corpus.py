"""Both parse paths over feedparser's own test corpus: every difference, printed.

    pip download --no-deps --no-binary :all: feedparser -d DIR        # once, by hand
    python -m benchmarks.parse_corpus DIR/feedparser-6.0.14.tar.gz    # or its unpacked dir

The sdist's tests/ folder holds ~2,200 small documents, each written to catch one quirk of
some feed in the wild. Each is parsed by `parse` twice, with the fast path (`fastparse`) and
without it (feedparser only). A document the fast path declines gives the same answer by
construction; for every other one the two `ParsedFeed`s (or `ParseError` messages) must be
equal. Prints each difference field by field, then the counts; exits 1 if any differ.
Nothing here downloads: the corpus must already be on disk.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

from monitor.errors import ParseError
from monitor.ingest.charset import decode
from monitor.ingest.fastparse import read_feed
from monitor.ingest.parse import parse
from monitor.models import ParsedFeed

URL = "http://corpus.example.org/feed.xml"
HEADERS = {"content-type": "application/xml"}


def outcome(body: bytes, *, fast: bool) -> ParsedFeed | str:
    try:
        return parse("corpus", body, HEADERS, URL, fast=fast)
    except ParseError as exc:
        return f"ParseError: {exc}"


def accepted(body: bytes) -> bool:
    """Whether the fast path takes the document (rather than declining it)."""
    if body.lstrip(b" \t\r\n\xef\xbb\xbf")[:1] in (b"{", b"["):
        return False  # JSON Feed: neither path's business here
    text, _ = decode(body, HEADERS["content-type"])
    return read_feed(text, "") is not None


def differences(fast: ParsedFeed | str, slow: ParsedFeed | str) -> list[str]:
    if isinstance(fast, str) or isinstance(slow, str):
        return [f"  fast: {fast!r}\n  slow: {slow!r}"]
    lines = [
        f"  feed.{name}: fast {getattr(fast, name)!r} != slow {getattr(slow, name)!r}"
        for name in ("title", "link", "language", "warning")
        if getattr(fast, name) != getattr(slow, name)
    ]
    if len(fast.entries) != len(slow.entries):
        lines.append(f"  entries: fast {len(fast.entries)} != slow {len(slow.entries)}")
    for index, (a, b) in enumerate(zip(fast.entries, slow.entries, strict=False)):
        for field in dataclasses.fields(a):
            mine, theirs = getattr(a, field.name), getattr(b, field.name)
            if mine != theirs:
                lines.append(f"  entry {index}.{field.name}: fast {mine!r} != slow {theirs!r}")
    return lines


def documents(root: Path) -> Iterator[Path]:
    for path in sorted((root / "tests").rglob("*")):
        if path.is_file() and path.suffix in (".xml", ".rdf", ".atom", ".rss"):
            yield path


def corpus_root(source: Path, scratch: Path) -> Path:
    if source.is_dir():
        return source
    with tarfile.open(source) as archive:
        archive.extractall(scratch, filter="data")
    (top,) = [p for p in scratch.iterdir() if p.is_dir()]
    return top


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("source", type=Path, help="feedparser sdist (.tar.gz) or its unpacked dir")
    source: Path = args.parse_args(argv).source
    with tempfile.TemporaryDirectory() as scratch:
        root = corpus_root(source, Path(scratch))
        total = taken = differing = 0
        for path in documents(root):
            body = path.read_bytes()
            total += 1
            if not accepted(body):
                continue
            taken += 1
            lines = differences(outcome(body, fast=True), outcome(body, fast=False))
            if lines:
                differing += 1
                print(path.relative_to(root), *lines, sep="\n")
    print(
        f"{total} documents: the fast path took {taken} and declined {total - taken}; "
        f"{differing} differ from feedparser"
    )
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
