"""A throwaway PostgreSQL cluster for the tests: its own data folder, socket folder and port,
run as a non-root user (PostgreSQL refuses to run as root), stopped at the end.

Debian's server binaries live in /usr/lib/postgresql/<version>/bin, which is not on PATH
(the client package alone makes that folder too, without `initdb`); `.ci/run` installs the
`postgresql` package when they are missing. Run as root, the cluster belongs to the
`postgres` user the package creates (`nobody` when there is none); run as anyone else, to
that user. Every failure names what failed and ends with the server's own words.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

WAIT = 60
START_ATTEMPTS = 3  # a free port can be taken by someone else before the server binds it
# A throwaway cluster: durability off (the tests never survive a crash of it), room for
# several services' pools at once.
TEST_SETTINGS: Mapping[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
}
INSTALL_HINT = "install PostgreSQL's server (Debian: apt-get install postgresql; .ci/run does)"


def _version(folder: str) -> tuple[int, ...]:
    """(15,) for /usr/lib/postgresql/15/bin, (9, 6) for .../9.6/bin; () when not a version."""
    name = Path(folder).parent.name
    return tuple(int(p) for p in name.split(".")) if re.fullmatch(r"\d+(\.\d+)*", name) else ()


def server_bin() -> Path | None:
    """The folder of initdb/pg_ctl: on PATH, else the newest Debian version folder that has
    the server (not just the client's tools)."""
    found = shutil.which("initdb")
    if found:  # often a symlink into the version folder, which holds the other tools
        return Path(found).resolve().parent
    folders = [
        f
        for f in glob.glob("/usr/lib/postgresql/*/bin")
        if _version(f) and all(os.access(Path(f) / tool, os.X_OK) for tool in ("initdb", "pg_ctl"))
    ]
    return Path(max(folders, key=_version)) if folders else None


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

    @property
    def data(self) -> Path:
        return self.root / "data"

    def postmaster_pid(self) -> int | None:
        """The server's main process (its backends are its children), None once stopped."""
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _run(self, *argv: str) -> None:
        _run([str(self.bin / argv[0]), *argv[1:]], self.root, f"{argv[0]} failed")

    def stop(self) -> None:
        subprocess.run(
            _as_owner([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]),
            capture_output=True,
            timeout=WAIT,
            cwd=self.root,
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
    if not owner:
        return argv
    # util-linux's runuser lives in /usr/sbin, which a root shell's PATH may lack.
    runuser = shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin")
    return [runuser or "runuser", "-u", owner, "--", *argv]


def _run(argv: list[str], cwd: Path, what: str, timeout: float = WAIT) -> None:
    """Run as the cluster's owner, from a folder it can enter; a failure says what happened."""
    try:
        subprocess.run(
            _as_owner(argv), check=True, capture_output=True, text=True, timeout=timeout, cwd=cwd
        )
    except subprocess.CalledProcessError as error:
        said = (error.stderr or error.stdout or "").strip().splitlines()[-5:]
        raise RuntimeError(f"{what}: " + " / ".join(said)) from None


def _reachable_by(owner: str, folder: Path) -> bool:
    """Whether `owner` may enter every folder down to `folder` (a root-only TMPDIR is not)."""
    uid = pwd.getpwnam(owner).pw_uid
    for part in [folder, *folder.parents]:
        mode = part.stat()
        own = mode.st_uid == uid and mode.st_mode & stat.S_IXUSR
        if not (mode.st_mode & stat.S_IXOTH or own):
            return False
    return True


def _make_root() -> Path:
    owner = _owner()
    base = Path(tempfile.gettempdir())
    if owner and not _reachable_by(owner, base):
        base = Path("/tmp")  # world-writable and enterable on every Unix
    root = Path(tempfile.mkdtemp(prefix="monitor-pg-", dir=base))
    if owner:
        shutil.chown(root, owner)
    return root


def _log_tail(root: Path) -> str:
    try:
        return " / ".join((root / "log").read_text(errors="replace").strip().splitlines()[-5:])
    except OSError:
        return "no server log"


def start_cluster(*, settings: Mapping[str, str] | None = None) -> Cluster:
    """initdb and start a new cluster; `settings` replaces TEST_SETTINGS (the benchmark
    runs with PostgreSQL's own durable defaults)."""
    bin_dir = server_bin()
    if bin_dir is None:
        raise RuntimeError(f"PostgreSQL's server (initdb, pg_ctl) is not installed: {INSTALL_HINT}")
    root = _make_root()
    user = "monitor"
    data, sockets = root / "data", root / "sock"
    initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", user, "--auth=trust"]
    _run([*initdb, "-E", "UTF8", "--locale=C.UTF-8"], root, "initdb failed")
    sockets.mkdir()
    owner = _owner()
    if owner:
        shutil.chown(sockets, owner)
    chosen = TEST_SETTINGS if settings is None else settings
    extra = "".join(f" -c {name}={value}" for name, value in chosen.items())
    for attempt in range(1, START_ATTEMPTS + 1):
        port = _free_port()
        options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1{extra}"
        pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "log")]
        try:
            _run([*pg_ctl, "-o", options, "-w", "-t", str(WAIT), "start"], root, "", WAIT + 5)
            return Cluster(root=root, port=port, user=user, bin=bin_dir)
        except RuntimeError:
            log = _log_tail(root)
            if "could not bind" not in log or attempt == START_ATTEMPTS:
                shutil.rmtree(root, ignore_errors=True)
                raise RuntimeError(f"the test PostgreSQL server did not start: {log}") from None
    raise AssertionError("unreachable")
