"""The instance's heartbeat at a stop (`monitor.service.instance.InstanceLife`), on a real
SQLite file whose write lock another connection holds, so that a beat is in flight.

A beat runs in a thread, which cancelling its job cannot stop: a beat still running when the
instance signs off finds no row and registers the instance again, and the scheduler's
shutdown used to cancel its job, which APScheduler logs as a crash with a traceback.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from monitor.service.instance import InstanceLife
from monitor.service.metrics import Metrics
from monitor.store import Store
from monitor.store.cluster import Instances


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "monitor.db") as opened:
        yield opened


def _ids(store: Store) -> list[str]:
    return [i.id for i in Instances(store).live(datetime.now(UTC))]


async def test_a_stop_waits_for_the_beat_in_flight_and_the_sign_off_is_final(
    store: Store,
) -> None:
    life = InstanceLife(store, Metrics("test-instance"), tick=0.2)
    life.start(AsyncIOScheduler(timezone=UTC))  # registers; the scheduler itself never runs
    assert _ids(store) == ["test-instance"]
    blocker = sqlite3.connect(store.path)
    blocker.execute("BEGIN IMMEDIATE")  # the database is busy: the beat's write waits
    try:
        beat = asyncio.create_task(life.beat())
        stopping = asyncio.create_task(life.stop())
        await asyncio.sleep(0)  # both take their first step
        assert not stopping.done()  # it waits for the beat's thread
        beat.cancel()  # what the scheduler's shutdown does to a job still running
    finally:
        blocker.rollback()  # the database answers
        blocker.close()
    await stopping
    await beat  # ends quietly: no CancelledError for APScheduler to log
    await life.leave()
    await life.beat()  # a tick after the stop does nothing
    assert _ids(store) == []


async def test_a_beat_cancelled_while_the_instance_runs_is_still_a_cancellation(
    store: Store,
) -> None:
    life = InstanceLife(store, Metrics("test-instance"), tick=0.2)
    life.start(AsyncIOScheduler(timezone=UTC))
    blocker = sqlite3.connect(store.path)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        beat = asyncio.create_task(life.beat())
        await asyncio.sleep(0)
        beat.cancel()
        with pytest.raises(asyncio.CancelledError):
            await beat
    finally:
        blocker.rollback()
        blocker.close()
    await life.stop()  # the thread of the cancelled beat is waited for
    await life.leave()
    assert _ids(store) == []
