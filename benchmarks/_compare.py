"""`python -m benchmarks.poll --compare`: rss2email and reader polling the same farm, same run.

Figures from another day or another machine say little on a shared, noisy one; polling the
same farm in the same run, one tool after the other, makes the ratios honest. Each tool polls
cold (empty state) and then warm (every feed again; the farm answers 304 to a conditional GET),
with its own defaults for how many feeds it fetches at once:

- rss2email 3.14 fetches one feed after another (it has no option for more); it runs as its
  own process (`r2e run --no-send`, so no mail is sent) on a config and data file in a
  temporary folder, its feeds added through its Python API (its figures include starting
  that process's interpreter, about a tenth of a second);
- reader fetches with `update_feeds(workers=1)`, its default, in this process, on a temporary
  database; `scheduled=False` makes the warm pass fetch every feed, as `force=True` does for
  monitor.

Both are optional (`pip install -e '.[bench]'`); a tool that is missing is reported as such.
Proxies are bypassed for 127.0.0.1, so every request stays on loopback.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MISSING = "not installed (pip install -e '.[bench]')"
R2E_TIMEOUT = 3600.0  # seconds for one rss2email pass; 1,000 feeds take about a minute
R2E_TO = "bench@example.invalid"  # rss2email wants a recipient even when it sends nothing


@dataclass(frozen=True)
class Figures:
    wall: float  # seconds
    cpu: float  # CPU seconds, the tool's processes together


@dataclass(frozen=True)
class ToolResult:
    tool: str
    how: str  # how it fetches: its concurrency
    cold: Figures | None = None  # None: not measured (see note)
    warm: Figures | None = None
    note: str = ""


class ToolFailed(Exception):
    """The tool ran but did not poll every feed; its figures would mean nothing."""


def installed(module: str) -> Any | None:
    """The tool's module, or None when it cannot be imported."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


@contextlib.contextmanager
def loopback_only() -> Iterator[None]:
    """Keep any configured HTTP proxy out of requests to the farm (127.0.0.1)."""
    saved = {k: os.environ.get(k) for k in ("NO_PROXY", "no_proxy")}
    for key in saved:
        os.environ[key] = "127.0.0.1,localhost"
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _cpu() -> float:
    """CPU seconds of this process and of its children that have been waited for."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def measure(fn: Callable[[], None]) -> Figures:
    cpu0, t0 = _cpu(), time.perf_counter()
    fn()
    return Figures(time.perf_counter() - t0, _cpu() - cpu0)


def median(figures: Sequence[Figures]) -> Figures:
    return Figures(
        statistics.median(f.wall for f in figures), statistics.median(f.cpu for f in figures)
    )


# --- rss2email ---------------------------------------------------------------------------------


def _r2e_setup(folder: Path, urls: Sequence[str]) -> list[str]:
    """Write rss2email's config with one feed per URL; return the `r2e` arguments for a run."""
    config_module = importlib.import_module("rss2email.config")
    feeds_module = importlib.import_module("rss2email.feeds")
    config, data = folder / "r2e.cfg", folder / "r2e.json"
    # A fresh copy of its defaults: by default every `Feeds` and `Feed` shares one module-level
    # config, which would keep the feeds of an earlier run in this process.
    settings = config_module.Config()
    settings.read_dict({"DEFAULT": dict(config_module.CONFIG["DEFAULT"])})
    feeds = feeds_module.Feeds(configfiles=[str(config)], datafile_path=str(data), config=settings)
    try:
        feeds.load(require=False)
        settings["DEFAULT"]["to"] = R2E_TO
        for i, url in enumerate(urls):
            feeds.new_feed(name=f"farm-{i:04d}", url=url, to=R2E_TO, config=settings)
        feeds.save_config()
        feeds.save_feeds()
    finally:
        feeds.close()  # it holds the data file open (and locked) from `load` on
    return ["-c", str(config), "-d", str(data), "run", "--no-send"]


def _r2e_run(args: Sequence[str]) -> None:
    code = "import rss2email.main; rss2email.main.run()"
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=R2E_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ToolFailed(f"r2e exited with {done.returncode}: {last}")


def _r2e_check(data: Path, feeds: int, items: int) -> None:
    """Every feed fetched, every item seen: rss2email logs failures rather than exiting."""
    state = json.loads(data.read_text())["feeds"]
    seen = sum(len(f.get("seen", {})) for f in state)
    if len(state) != feeds or seen != feeds * items:
        raise ToolFailed(f"{seen} items seen in {len(state)} feeds, expected {feeds * items}")


def run_rss2email(urls: Sequence[str], items: int) -> tuple[Figures, Figures]:
    with tempfile.TemporaryDirectory(prefix="monitor-bench-r2e-") as tmp:
        args = _r2e_setup(Path(tmp), urls)
        cold = measure(lambda: _r2e_run(args))
        _r2e_check(Path(tmp) / "r2e.json", len(urls), items)
        warm = measure(lambda: _r2e_run(args))
        _r2e_check(Path(tmp) / "r2e.json", len(urls), items)
    return cold, warm


# --- reader ------------------------------------------------------------------------------------


def _reader_pass(reader: Any, expect_new: int | None) -> None:
    """One `update_feeds` pass over every feed; fail unless all went as expected."""
    errors, new = [], 0
    for result in reader.update_feeds_iter(scheduled=False):
        if result.error is not None:
            errors.append(f"{result.url}: {result.error}")
        elif result.updated_feed is not None:
            new += result.updated_feed.new
    if errors:
        raise ToolFailed(f"{len(errors)} feeds failed, first: {errors[0]}")
    if expect_new is not None and new != expect_new:
        raise ToolFailed(f"{new} new entries, expected {expect_new}")


def run_reader(urls: Sequence[str], items: int) -> tuple[Figures, Figures]:
    make_reader = importlib.import_module("reader").make_reader
    with tempfile.TemporaryDirectory(prefix="monitor-bench-reader-") as tmp:
        reader = make_reader(str(Path(tmp) / "reader.sqlite"))
        try:
            for url in urls:
                reader.add_feed(url)
            cold = measure(lambda: _reader_pass(reader, len(urls) * items))
            warm = measure(lambda: _reader_pass(reader, 0))
        finally:
            reader.close()
    return cold, warm


# --- both, and the report ----------------------------------------------------------------------

TOOLS: tuple[tuple[str, str, str, Callable[[Sequence[str], int], tuple[Figures, Figures]]], ...] = (
    ("rss2email", "rss2email", "one feed at a time: it has no option for more", run_rss2email),
    ("reader", "reader", "update_feeds(workers=1), its default", run_reader),
)


def measure_tool(
    name: str,
    module: str,
    how: str,
    run: Callable[[Sequence[str], int], tuple[Figures, Figures]],
    urls: Sequence[str],
    items: int,
    runs: int,
) -> ToolResult:
    found = installed(module)
    if found is None:
        return ToolResult(name, how, note=MISSING)
    label = f"{name} {getattr(found, '__version__', '')}".strip()
    try:
        with loopback_only():
            pairs = [run(urls, items) for _ in range(runs)]
    except (ToolFailed, subprocess.TimeoutExpired) as exc:
        return ToolResult(label, how, note=f"failed, no figures: {exc}")
    except Exception as exc:  # another project's internals: report it, keep monitor's figures
        return ToolResult(label, how, note=f"failed, no figures: {type(exc).__name__}: {exc}")
    return ToolResult(label, how, median([c for c, _ in pairs]), median([w for _, w in pairs]))


def compare(urls: Sequence[str], items: int, runs: int) -> list[ToolResult]:
    """Poll `urls` cold and warm with each other tool, `runs` times each (medians)."""
    return [measure_tool(*tool, urls, items, runs) for tool in TOOLS]


def _cell(f: Figures | None) -> str:
    return f"{f.wall:8.2f} s {f.cpu:8.2f} CPU-s" if f else ""


def _ratio(mine: Figures, theirs: Figures | None) -> str:
    if theirs is None:
        return ""
    # The larger the ratio, the less time monitor took than the other tool.
    return f"x{theirs.wall / mine.wall:.1f} wall, x{theirs.cpu / max(mine.cpu, 1e-9):.1f} CPU"


def report(
    mine_cold: Figures, mine_warm: Figures, mine_how: str, others: Sequence[ToolResult]
) -> list[str]:
    lines = [
        "",
        "the same farm, the same run: monitor against the others (medians; CPU-s: all the",
        "tool's processes; 'x3.0' = the other tool took 3.0 times monitor's)",
        f"  {'monitor':<16} cold {_cell(mine_cold)}   warm {_cell(mine_warm)}   ({mine_how})",
    ]
    for r in others:
        if r.cold is None or r.warm is None:
            lines.append(f"  {r.tool:<16} {r.note}")
            continue
        lines += [
            f"  {r.tool:<16} cold {_cell(r.cold)}   warm {_cell(r.warm)}   ({r.how})",
            f"  {'':<16} vs monitor: cold {_ratio(mine_cold, r.cold)}; "
            f"warm {_ratio(mine_warm, r.warm)}",
        ]
    return lines
