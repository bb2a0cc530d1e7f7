"""`monitor feeds import` benchmark: CPU seconds to import an OPML list into feeds.yaml.

    python -m benchmarks.feeds_import                       # 10,000 feeds, 3 runs, medians
    python -m benchmarks.feeds_import --feeds 1000 2000     # several sizes: is it linear?

Each run writes a fresh feeds.yaml holding one commented feed (so the comment-keeping edit path
is the one measured), an OPML file of N feeds in a few folders, and runs the command's own code
(`FeedsFile.load`, `add_imported`, `save`) in this process. The figure is process time (CPU
seconds, which a busy machine hardly moves); the file is loaded again afterwards and must hold
every feed, or the benchmark stops.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from xml.sax.saxutils import quoteattr

from monitor.ingest.feeds import FeedsFile, load_feeds
from monitor.ingest.opml import add_imported, import_opml

HEAD = "# Sources.\nfeeds:\n  # kept: a comment glued to the first entry\n"
HEAD += "  - url: https://example.org/first.xml\n    title: First\n"


def opml(count: int) -> bytes:
    """N feed outlines, spread over ten folders (folders become tags)."""
    folders = []
    for folder in range(10):
        outlines = "".join(
            f"<outline type='rss' text={quoteattr(f'Feed {i}')} "
            f"xmlUrl='https://news{i % 97}.example.com/section/{i}/rss.xml'/>"
            for i in range(folder, count, 10)
        )
        folders.append(f"<outline text='Desk {folder}'>{outlines}</outline>")
    body = "".join(folders)
    return f"<opml version='2.0'><head/><body>{body}</body></opml>".encode()


def run(count: int, folder: Path) -> float:
    """CPU seconds of one import of `count` feeds."""
    path = folder / "feeds.yaml"
    path.write_text(HEAD, encoding="utf-8")
    data = opml(count)
    started = time.process_time()
    edit = FeedsFile.load(path)
    added, _ = add_imported(edit, import_opml(data, "bench.opml"), "bench.opml")
    edit.save()
    seconds = time.process_time() - started
    loaded = load_feeds(path).feeds
    if added != count or len(loaded) != count + 1 or "# kept" not in path.read_text():
        sys.exit(f"wrong result: {added} added, {len(loaded)} in the file")
    return seconds


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--feeds", type=int, nargs="+", default=[10_000])
    args.add_argument("--runs", type=int, default=3)
    opts = args.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        for count in opts.feeds:
            times = [run(count, Path(folder)) for _ in range(opts.runs)]
            median = statistics.median(times)
            print(
                f"feeds import of {count:,} feeds: {median:.2f} CPU-s median of {opts.runs} "
                f"({count / median:,.0f} feeds/s; runs {', '.join(f'{t:.2f}' for t in times)})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
