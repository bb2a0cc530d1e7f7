"""The tests' throwaway PostgreSQL cluster (tests/support/pgcluster.py) starts on a fresh
Debian machine: it finds the server's binaries (not the client's), runs from a folder its
owner can enter, tries another port when one is taken, and says why when it cannot start."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support import pgcluster


def make_bin(folder: Path, *tools: str) -> str:
    folder.mkdir(parents=True)
    for tool in tools:
        (folder / tool).write_text("#!/bin/sh\n")
        (folder / tool).chmod(0o755)
    return str(folder)


def test_the_newest_version_folder_with_the_server_is_chosen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folders = [
        make_bin(tmp_path / "9.6" / "bin", "initdb", "pg_ctl"),
        make_bin(tmp_path / "15" / "bin", "initdb", "pg_ctl"),
        make_bin(tmp_path / "16" / "bin", "psql", "pg_dump"),  # the client package alone
    ]
    monkeypatch.setattr(pgcluster.shutil, "which", lambda *a, **k: None)
    monkeypatch.setattr(pgcluster.glob, "glob", lambda pattern: folders)
    assert pgcluster.server_bin() == tmp_path / "15" / "bin"
    monkeypatch.setattr(pgcluster.glob, "glob", lambda pattern: folders[2:])
    assert pgcluster.server_bin() is None


def test_the_data_folder_is_one_its_owner_can_enter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    root = pgcluster._make_root()
    try:
        if os.geteuid() == 0:  # the server runs as `postgres`, who cannot enter `private`
            assert root.parent == Path("/tmp")
            assert pwd.getpwuid(root.stat().st_uid).pw_name == pgcluster._owner()
        else:  # the server runs as this user, who can
            assert root.parent == private
        assert stat.S_IMODE(root.stat().st_mode) == 0o700
    finally:
        shutil.rmtree(root)


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_port_taken_before_the_server_binds_it_is_tried_again(
    taken_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    ports = iter([taken_port])
    free = pgcluster._free_port
    monkeypatch.setattr(pgcluster, "_free_port", lambda: next(ports, None) or free())
    cluster = pgcluster.start_cluster()
    try:
        assert cluster.port != taken_port
        with psycopg.connect(cluster.dsn) as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("monitor",)
        assert cluster.postmaster_pid() is not None
    finally:
        cluster.stop()
    assert not cluster.root.exists()


def test_a_server_that_cannot_start_says_why() -> None:
    with pytest.raises(RuntimeError) as caught:
        pgcluster.start_cluster(settings={"max_connections": "-5"})
    message = str(caught.value)
    assert message.startswith("the test PostgreSQL server did not start: ")
    assert "max_connections" in message, message
