"""A throwaway PostgreSQL cluster for the tests: its own data folder, socket folder and port,
run as a non-root user (PostgreSQL refuses to run as root), stopped at the end.

Debian's server binaries live in /usr/lib/postgresql/<version>/bin, which is not on PATH;
`.ci/run` installs the `postgresql` package when it is missing.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

WAIT = 60


def server_bin() -> Path | None:
    """The folder of initdb/pg_ctl: on PATH, else the newest Debian version folder."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    folders = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[4]))
    return Path(folders[-1]) if folders else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Cluster:
    root: Path
    port: int
    user: str
    bin: Path

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def _run(self, *argv: str) -> None:
        subprocess.run(
            _as_owner([str(self.bin / argv[0]), *argv[1:]]),
            check=True,
            capture_output=True,
            timeout=WAIT,
        )

    def stop(self) -> None:
        subprocess.run(
            _as_owner(
                [str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "stop"]
            ),
            capture_output=True,
            timeout=WAIT,
        )
        shutil.rmtree(self.root, ignore_errors=True)


def server_url(admin_url: str, name: str) -> str:
    """Create database `name` through `admin_url` and return the URL that reaches it."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin_url)
    return urlunsplit(parts._replace(path="/" + name))


def _owner() -> str | None:
    """The account that runs the server: `postgres` when the tests run as root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
        return "postgres"
    except KeyError:
        return "nobody"


def _as_owner(argv: list[str]) -> list[str]:
    owner = _owner()
    return ["runuser", "-u", owner, "--", *argv] if owner else argv


def start_cluster() -> Cluster:
    bin_dir = server_bin()
    if bin_dir is None:
        raise RuntimeError(
            "PostgreSQL's server is not installed (Debian: apt-get install postgresql)"
        )
    root = Path(tempfile.mkdtemp(prefix="monitor-pg-"))
    owner = _owner()
    if owner:
        shutil.chown(root, owner)
    user = "monitor"
    data, sockets = root / "data", root / "sock"
    subprocess.run(
        _as_owner(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                user,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ]
        ),
        check=True,
        capture_output=True,
        timeout=WAIT,
    )
    sockets.mkdir()
    if owner:
        shutil.chown(sockets, owner)
    port = _free_port()
    # A throwaway cluster: durability settings off (the tests never survive a crash of it).
    options = (
        f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        " -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
    )
    subprocess.run(
        _as_owner(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(root / "log"),
                "-o",
                options,
                "-w",
                "-t",
                str(WAIT),
                "start",
            ]
        ),
        check=True,
        capture_output=True,
        timeout=WAIT + 5,
    )
    return Cluster(root=root, port=port, user=user, bin=bin_dir)
