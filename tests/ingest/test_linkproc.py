"""Story linking in a process of its own (`monitor.ingest.linkproc`), on both backends.

A poll cycle hands its full batches to a second process once one waits (`linking.BATCH`,
lowered here): that process links them on its own connection, with the same linker code and
the same batches, so the stories must be those that linking in the cycle's process makes. A
process that dies must leave nothing unlinked, and a small cycle must not start one.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from monitor.ingest import linking
from monitor.ingest.linking import link_pending, linking_alongside
from monitor.ingest.linkproc import LinkerProcess
from monitor.models import Item, Settings
from monitor.store import Store
from monitor.story.linker import Decision, Linker, Report
from tests.ingest.test_linking import _until, item, save, stories
from tests.support.procs import descendants, running, wait_gone

STARTED = "in a process of their own (pid "
FAILED = "in a process of its own failed"


@dataclass
class DiesApart(Linker):
    """The real linker, except that it ends its own process at its first decision anywhere
    but in the process `parent` (the test's): a linking process killed midway. With `hangs`,
    it waits there instead, for ever."""

    parent: int = 0
    hangs: bool = False

    def decide(self, report: Report) -> Decision:
        if os.getpid() != self.parent:
            if self.hangs:
                threading.Event().wait()
            os._exit(9)
        return super().decide(report)


def news() -> list[Item]:
    """Three developments told by several outlets, in the order a cycle stores them."""
    told = [
        ("kp", ("KP",), "North Korea fires a ballistic missile into the sea east of Wonsan"),
        ("tw", ("TW",), "PLA drills around Taiwan enter their second day near Kinmen"),
        ("jp", ("JP", "CN"), "Tokyo protests a Chinese coast guard entry near the Senkakus"),
    ]
    items = []
    for n in range(12):
        key, regions, title = told[n % 3]
        one = item(f"{key}{n}", n / 4, regions, feed=f"outlet{n % 4}")
        items.append(replace(one, title=f"{title} ({n % 4})"))
    return items


@pytest.fixture
def two(db_target: str | Path, tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    """A store on the backend under test, and a reference SQLite file."""
    with Store(db_target) as tried, Store(tmp_path / "reference.db") as reference:
        yield tried, reference


def partition(store: Store, ids: dict[str, int]) -> set[frozenset[str]]:
    by_story: dict[int, set[str]] = {}
    for guid, story in stories(store, ids).items():
        by_story.setdefault(story, set()).add(guid)
    return {frozenset(guids) for guids in by_story.values()}


def cycle(store: Store, items: list[Item]) -> dict[str, int]:
    """Store `items` two at a time in a cycle that links alongside, each full batch (of
    `linking.BATCH`) taken before the next items come; their ids."""

    async def run() -> dict[str, int]:
        async with linking_alongside(store, Settings()):
            for at in range(0, len(items), 2):
                ids = await asyncio.to_thread(save, store, *items[at : at + 2])
                await _until(lambda: store.pending_count() < linking.BATCH, 60)
        return ids

    return asyncio.run(run())


def test_full_batches_are_linked_in_another_process_into_the_same_stories(
    two: tuple[Store, Store], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    tried, reference = two
    monkeypatch.setattr(linking, "BATCH", 4)
    caplog.set_level(logging.INFO, "monitor.stories")
    ids = cycle(tried, news())
    started = [r.getMessage() for r in caplog.records if STARTED in r.getMessage()]
    assert len(started) == 1
    assert int(started[0].rsplit("pid ", 1)[1].rstrip(")")) != os.getpid()
    assert tried.pending_count() == 0 and len(stories(tried, ids)) == 12
    # The reference: the same items, linked here in batches of the same size.
    reference_ids = save(reference, *news())
    assert link_pending(reference, batch=4) == 12
    got, expected = partition(tried, ids), partition(reference, reference_ids)
    assert got == expected
    assert len(got) == 3  # the three developments, each told four times


def test_a_linking_process_that_dies_leaves_nothing_unlinked(
    two: tuple[Store, Store], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    tried, reference = two
    monkeypatch.setattr(linking, "BATCH", 4)
    dies = functools.partial(DiesApart, parent=os.getpid())
    items = news()

    def failed() -> bool:
        return any(FAILED in r.getMessage() for r in caplog.records)

    async def run() -> dict[str, int]:
        async with linking_alongside(tried, Settings(), dies):
            await asyncio.to_thread(save, tried, *items[:4])  # a full batch: the process dies
            await _until(failed, 60)
            return await asyncio.to_thread(save, tried, *items[4:])

    ids = asyncio.run(run())
    # Its batch was never committed: the cycle linked every item itself at its end, once.
    assert tried.pending_count() == 0
    assert len(stories(tried, ids)) == 12
    assert tried._rows("SELECT count(*) AS n FROM story_links")[0]["n"] == 12
    reference_ids = save(reference, *news())
    link_pending(reference, batch=4)
    assert partition(tried, ids) == partition(reference, reference_ids)


def test_a_small_cycle_links_in_its_own_process(
    two: tuple[Store, Store], caplog: pytest.LogCaptureFixture
) -> None:
    tried, _ = two
    caplog.set_level(logging.INFO, "monitor.stories")
    ids = cycle(tried, news())  # 12 items: far from a full batch
    assert not [r for r in caplog.records if STARTED in r.getMessage()]
    assert tried.pending_count() == 0 and len(stories(tried, ids)) == 12


def priority(store: Store, *, full: bool, batch: int) -> int:
    """A job that gives the linking process's priority (its nice value) instead of linking."""
    return os.getpriority(os.PRIO_PROCESS, 0)


def test_the_linking_process_keeps_its_owners_priority(tmp_path: Path) -> None:
    """The parse workers give way (`workers.give_way`); what they feed must not."""

    async def run(store: Store) -> int:
        apart = LinkerProcess(store, priority)
        try:
            return await apart.link(full=False, batch=1)
        finally:
            await apart.close()

    with Store(tmp_path / "p.db") as store:
        assert asyncio.run(run(store)) == os.getpriority(os.PRIO_PROCESS, 0)


# A cycle whose linking process hangs in its first batch, in a process of its own.
OWNER = """
import asyncio, functools, os, sys
from monitor.ingest import linking
from monitor.models import Settings
from monitor.store import Store
from tests.ingest.test_linking import item, save
from tests.ingest.test_linkproc import DiesApart

linking.BATCH = 2
hangs = functools.partial(DiesApart, parent=os.getpid(), hangs=True)

async def main() -> None:
    with Store(sys.argv[1]) as store:
        async with linking.linking_alongside(store, Settings(), hangs):
            save(store, item("a", 0, ("TW",)), item("b", 1, ("TW",)))
            print("saved", flush=True)
            await asyncio.Event().wait()

asyncio.run(main())
"""


def test_the_linking_process_dies_with_its_owner_even_by_sigkill(tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", OWNER, str(tmp_path / "m.db")],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    ) as owner:
        tree: dict[int, int] = {}
        try:
            assert owner.stdout is not None and owner.stdout.readline() == "saved\n"
            # The fork server (a child) and the linking process it forked (a grandchild).
            deadline = time.monotonic() + 30
            while not any(depth >= 2 for depth in tree.values()):
                assert time.monotonic() < deadline, f"no linking process under it: {tree}"
                time.sleep(0.05)
                tree = descendants(owner.pid)
            owner.send_signal(signal.SIGKILL)
            owner.wait(timeout=30)
            assert wait_gone(set(tree), timeout=10) == set()
        finally:
            for pid in [owner.pid, *tree]:
                if running(pid):
                    os.kill(pid, signal.SIGKILL)


def test_the_process_opens_a_file_named_by_a_relative_path_wherever_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with Store(Path("state") / "m.db") as store:
        assert store.path == Path("state") / "m.db"  # as the user named it, for messages
        assert store.target == str((tmp_path / "state" / "m.db").resolve())
