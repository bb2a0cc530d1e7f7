"""Deployment files (Dockerfile, docker-compose.yml, .env.example, deploy/) match the project.

No Docker engine runs where these tests run, so the files are checked by reading them: the
compose file against the Compose Specification's JSON Schema (and by `docker compose config`
where the compose plugin is installed), the systemd unit by `systemd-analyze verify` where it
exists, and every command, path, port and variable they use against the project itself:
`monitor run`'s options and defaults, the repository's files, the example channels file.
"""

from __future__ import annotations

import configparser
import json
import re
import shlex
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from functools import cache
from http.server import BaseHTTPRequestHandler, HTTPServer
from importlib.resources import files
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import click
import jsonschema
import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from monitor.cli.main import main
from monitor.digest.channels import load_channels
from monitor.store.cluster import ENV_INSTANCE
from monitor.web.config import TOKEN_ENV

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
SCALE_FILE = ROOT / "docker-compose.scale.yml"
CHANNELS_FILE = ROOT / "deploy" / "channels.compose.yaml"
UNIT_FILE = ROOT / "deploy" / "monitor.service"
# What the service needs inside the container: WORKDIR and the defaults relative to it.
WORKDIR = PurePosixPath("/srv/monitor")
HEALTH_PATH = "/healthz"
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


# --- reading the files ------------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


@cache
def compose_file(path: Path) -> dict[str, Any]:
    doc = load_yaml(path)  # YAML merge keys (<<) resolved: what compose sees
    assert isinstance(doc, dict), f"{path.name} must be a mapping"
    return doc


def compose() -> dict[str, Any]:
    return compose_file(COMPOSE_FILE)


def service(name: str, path: Path = COMPOSE_FILE) -> dict[str, Any]:
    services = compose_file(path)["services"]
    assert name in services, f"{path.name} has no service {name!r}"
    return dict(services[name])


@cache
def dockerfile() -> tuple[tuple[str, str], ...]:
    """(INSTRUCTION, arguments) pairs: continuation lines joined, comments dropped (Docker
    drops comment lines inside a continuation too)."""
    instructions, pending = [], ""
    for raw in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending += line.removesuffix("\\").strip() + " "
        if not line.endswith("\\"):
            keyword, _, args = pending.strip().partition(" ")
            instructions.append((keyword.upper(), args.strip()))
            pending = ""
    assert not pending, "Dockerfile ends inside a continuation line"
    return tuple(instructions)


def instruction(keyword: str) -> list[str]:
    return [args for key, args in dockerfile() if key == keyword]


def healthcheck_command() -> list[str]:
    (args,) = instruction("HEALTHCHECK")
    options, _, command = args.partition(" CMD ")
    assert command.startswith("["), "HEALTHCHECK CMD must be in exec form (no shell needed)"
    assert "--timeout=5s" in options.split()
    return list(json.loads(command))


@cache
def env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, value = line.partition("=")
            # Both readers must agree: compose's env_file and systemd's EnvironmentFile.
            assert sep and ENV_NAME.match(name), f".env.example: not NAME=value: {line!r}"
            assert not re.search(r"[\s\"'$`\\]", value), f".env.example: plain values: {line!r}"
            values[name] = value
    return values


@cache
def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(UNIT_FILE.read_text(encoding="utf-8"))
    return parser


# --- the project's side -------------------------------------------------------------------------


def cli_option(name: str) -> click.Option:
    """An option of `monitor run`, or a global one."""
    run = main.commands["run"]
    for param in (*run.params, *main.params):
        if isinstance(param, click.Option) and name in param.opts:
            return param
    raise AssertionError(f"neither `monitor run` nor `monitor` has an option {name}")


def check_run_command(argv: list[str], where: str) -> None:
    """`argv` (after the program name) is a valid `monitor run` command line."""
    assert argv[:1] == ["run"], f"{where}: expected `monitor run ...`, got {argv}"
    run = main.commands["run"]
    try:
        run.make_context("run", list(argv[1:]), parent=click.Context(main))
    except click.ClickException as error:
        raise AssertionError(f"{where}: `monitor {shlex.join(argv)}`: {error}") from error
    shown = CliRunner().invoke(main, ["run", "--help"])
    assert shown.exit_code == 0, shown.output
    for arg in argv[1:]:
        if arg.startswith("--"):
            assert arg.split("=")[0] in shown.output, f"{where}: {arg} not in `monitor run --help`"


@cache
def project() -> dict[str, Any]:
    return dict(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"])


def cli_envvars() -> set[str]:
    params = [*main.params, *main.commands["run"].params]
    return {p.envvar for p in params if isinstance(p, click.Option) and isinstance(p.envvar, str)}


# --- docker-compose.yml -----------------------------------------------------------------------


def compose_schema() -> dict[str, Any]:
    # check-jsonschema ships the Compose Specification schema, kept up to date upstream; its
    # CLI names it `vendor.compose-spec`.
    text = files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
    return dict(json.loads(text.read_text(encoding="utf-8")))


def docker_compose_config(tmp_path: Path) -> subprocess.CompletedProcess[str] | None:
    """`docker compose config` in a copy of the project whose .env is .env.example, or None
    when no compose plugin answers (`config` needs the plugin, not an engine)."""
    docker = shutil.which("docker")
    version = docker and subprocess.run([docker, "compose", "version"], capture_output=True)
    if not docker or not version or version.returncode != 0:
        return None
    for name in ("docker-compose.yml", "Dockerfile", "rules", "deploy"):
        (tmp_path / name).symlink_to(ROOT / name)
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    command = [docker, "compose", "--project-directory", str(tmp_path), "config", "--quiet"]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_compose_file_follows_the_compose_specification(tmp_path: Path) -> None:
    validator = jsonschema.Draft202012Validator(compose_schema())
    problems = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(compose())]
    assert not problems, problems
    # The schema does catch a mistake (so the check above can fail).
    assert not validator.is_valid({**compose(), "servics": {}})
    assert set(compose()["services"]) == {"monitor", "mailpit"}
    result = docker_compose_config(tmp_path)
    if result is not None:
        assert result.returncode == 0, result.stderr


def test_compose_runs_the_service_as_asked() -> None:
    monitor = service("monitor")
    assert monitor["build"] == "."
    assert monitor["restart"] == "unless-stopped"
    assert monitor["env_file"] == ".env"
    assert monitor.get("init") is True, "tini forwards SIGTERM and SIGHUP to monitor"
    # Docker's default grace is 10 s, exactly what the service may need to stop cleanly.
    assert int(str(monitor["stop_grace_period"]).removesuffix("s")) > 10
    assert "image" in service("mailpit") and service("mailpit")["image"].startswith("axllent/")


def volume_mounts() -> dict[str, str]:
    """target -> source of the monitor service's short-syntax volumes."""
    mounts = {}
    for spec in service("monitor")["volumes"]:
        source, target, *mode = spec.split(":")
        mounts[target] = source + (":ro" if mode == ["ro"] else "")
    return mounts


def test_compose_mounts_rules_read_only_and_state_in_a_named_volume() -> None:
    mounts = volume_mounts()
    assert mounts[str(WORKDIR / "rules")] == "./rules:ro"
    assert mounts[str(WORKDIR / "state")] == "state"
    assert "state" in compose()["volumes"], "the state volume must be declared (named volume)"
    # The service's defaults (--rules rules, --db state/monitor.db) resolve to the mounts.
    assert cli_option("--rules").default == "rules"
    assert PurePosixPath(str(cli_option("--db").default)).parent.name == "state"
    for target, source in mounts.items():
        if source.startswith("."):
            assert (ROOT / source.removesuffix(":ro")).exists(), f"{source} is not in the repo"
            assert source.endswith(":ro"), f"{target}: the service must not write the host's files"


def test_compose_channels_make_mailpit_the_default_email_receiver() -> None:
    mounts = volume_mounts()
    target = str(WORKDIR / "rules" / "channels.yaml")
    assert mounts[target] == "./deploy/channels.compose.yaml:ro"
    # A file mounted inside the read-only rules mount needs its mount point to exist there.
    assert (ROOT / "rules" / "channels.yaml").is_file()
    channels = load_channels(CHANNELS_FILE)
    first = next(iter(channels.receivers.values()))
    assert first.email is not None
    assert (first.email.smtp.host, first.email.smtp.port, first.email.smtp.tls) == (
        "mailpit",
        1025,
        "none",
    )
    assert first.email.smtp.username_env is None, "Mailpit offers no login over plain SMTP"
    assert [str(p) for p in service("mailpit")["expose"]] == ["1025"]
    assert any(route.receiver == first.id for route in channels.routes)


def test_compose_publishes_ports_on_loopback_only() -> None:
    port = cli_option("--health-port").default
    assert service("monitor")["ports"] == [f"127.0.0.1:{port}:{port}"]
    assert service("mailpit")["ports"] == ["127.0.0.1:8025:8025"]
    assert not any(":1025" in p for p in service("mailpit")["ports"]), "SMTP stays internal"


# --- docker-compose.scale.yml -----------------------------------------------------------------
# Three instances of the service above on one PostgreSQL: each must run exactly as the single
# service does, reach the database the postgres service creates, and be told apart.

INSTANCES = ("monitor-1", "monitor-2", "monitor-3")


def scale() -> dict[str, Any]:
    return compose_file(SCALE_FILE)


def scale_service(name: str) -> dict[str, Any]:
    return service(name, SCALE_FILE)


def scale_compose_config(
    tmp_path: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str] | None:
    """`docker compose -f docker-compose.scale.yml config` with `env` as .env, or None
    without the compose plugin."""
    docker = shutil.which("docker")
    version = docker and subprocess.run([docker, "compose", "version"], capture_output=True)
    if not docker or not version or version.returncode != 0:
        return None
    for name in ("docker-compose.scale.yml", "Dockerfile", "rules", "deploy"):
        (tmp_path / name).symlink_to(ROOT / name)
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    command = [docker, "compose", "--project-directory", str(tmp_path)]
    command += ["-f", str(tmp_path / "docker-compose.scale.yml"), "config", "--quiet"]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_scale_compose_file_follows_the_compose_specification(tmp_path: Path) -> None:
    validator = jsonschema.Draft202012Validator(compose_schema())
    problems = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(scale())]
    assert not problems, problems
    assert set(scale()["services"]) == {*INSTANCES, "postgres", "mailpit"}
    filled = {**env_example(), TOKEN_ENV: "t" * 24, "POSTGRES_PASSWORD": "p" * 16}
    (tmp_path / "filled").mkdir()
    result = scale_compose_config(tmp_path / "filled", filled)
    if result is not None:
        assert result.returncode == 0, result.stderr
        # Without a token, compose refuses to start and says which variable is missing.
        (tmp_path / "empty").mkdir()
        refused = scale_compose_config(tmp_path / "empty", {**filled, TOKEN_ENV: ""})
        assert refused is not None and refused.returncode != 0
        assert TOKEN_ENV in refused.stderr


def test_scale_instances_run_as_the_single_service_does() -> None:
    single = service("monitor")
    single_mounts = [v for v in single["volumes"] if not v.startswith("state:")]
    names = set()
    for name in INSTANCES:
        instance = scale_service(name)
        for key in ("build", "restart", "init", "stop_grace_period", "env_file", "healthcheck"):
            assert instance[key] == single[key], f"{name}: {key} differs from docker-compose.yml"
        # rules/ and the example channels as the single service mounts them; no SQLite file.
        assert instance["volumes"] == single_mounts, name
        names.add(instance["environment"][ENV_INSTANCE])
    assert names == set(INSTANCES), "each instance needs its own MONITOR_INSTANCE"
    assert ENV_INSTANCE == "MONITOR_INSTANCE"


def test_scale_instances_share_the_database_the_postgres_service_creates() -> None:
    postgres = scale_service("postgres")
    created = postgres["environment"]
    assert str(postgres["image"]).startswith("postgres:")
    assert "ports" not in postgres, "the database stays on the compose network"
    [data] = postgres["volumes"]
    assert data.split(":")[0] in scale()["volumes"], "the database lives in a named volume"
    db_option = cli_option("--db")
    assert db_option.envvar == "MONITOR_DB"
    for name in INSTANCES:
        environment = scale_service(name)["environment"]
        url = urlsplit(environment["MONITOR_DB"])
        assert db_option.type.convert(environment["MONITOR_DB"], None, None).is_postgres
        assert (url.scheme, url.hostname, url.port) == ("postgresql", "postgres", 5432)
        assert str(url.port) in [str(p) for p in postgres["expose"]]
        assert (url.username, url.path) == (created["POSTGRES_USER"], "/" + created["POSTGRES_DB"])
        assert url.password is None, "the password comes from PGPASSWORD, never the URL"
        assert environment["PGPASSWORD"] == created["POSTGRES_PASSWORD"]
        # Both secrets from .env, and compose refuses to start without them.
        assert created["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
        assert environment[TOKEN_ENV].startswith(f"${{{TOKEN_ENV}:?")
        depends = scale_service(name)["depends_on"]
        assert depends["postgres"] == {"condition": "service_healthy"}
    healthcheck = postgres["healthcheck"]["test"]
    assert healthcheck[:2] == ["CMD", "pg_isready"]
    assert f"--username={created['POSTGRES_USER']}" in healthcheck
    assert f"--dbname={created['POSTGRES_DB']}" in healthcheck


def test_scale_publishes_each_console_on_its_own_loopback_port() -> None:
    port = cli_option("--health-port").default
    host_ports = []
    for name in INSTANCES:
        [published] = scale_service(name)["ports"]
        address, host_port, container_port = published.split(":")
        assert (address, container_port) == ("127.0.0.1", str(port)), published
        host_ports.append(host_port)
    assert len(set(host_ports)) == len(INSTANCES)
    assert scale_service("mailpit")["ports"] == ["127.0.0.1:8025:8025"]
    assert scale_service("mailpit")["image"] == service("mailpit")["image"]
    assert scale_service("mailpit")["healthcheck"]["test"] == ["CMD", "/mailpit", "readyz"]
    assert all("healthcheck" in svc for svc in scale()["services"].values())


def test_scale_readme_section_names_what_the_file_has() -> None:
    """The README's commands for the scale file name its services, and its ports are the
    published ones."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## When one machine is not enough\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [c for c in block.splitlines() if c.startswith("docker compose")]
    assert commands and all(c.startswith(f"docker compose -f {SCALE_FILE.name} ") for c in commands)
    services = set(scale()["services"])
    for command in commands:
        words = shlex.split(command.split("#", 1)[0])
        if words[3] in {"exec", "stop", "logs"}:
            named = [w for w in words[4:] if not w.startswith("-")]
            assert named and named[0] in services, command
            if words[3] != "exec":
                assert set(named) <= services, command
    flowing = " ".join(section.split())
    for name in INSTANCES:
        host_port = scale_service(name)["ports"][0].split(":")[1]
        assert re.search(rf"`{name}` on (port )?{host_port}\b", flowing), name


# --- Dockerfile -------------------------------------------------------------------------------


def test_dockerfile_builds_the_package_for_a_non_root_user() -> None:
    assert instruction("FROM") == ["python:3.11-slim"]
    assert instruction("WORKDIR") == [str(WORKDIR)]
    (user,) = instruction("USER")
    assert user not in {"root", "0"}
    assert any("useradd" in run and run.endswith(f" {user}") for run in instruction("RUN"))
    assert any(f"chown {user}:{user} state" in run for run in instruction("RUN"))
    installs = [run for run in instruction("RUN") if "pip install" in run]
    assert len(installs) == 1 and "[" not in installs[0], "install without extras"


def test_dockerfile_copies_what_the_build_needs_and_dockerignore_lets_it_in() -> None:
    allowed = {
        line.removeprefix("!").rstrip("/")
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.startswith("!")
    }
    sources = [src for args in instruction("COPY") for src in args.split()[:-1]]
    assert sources, "the Dockerfile copies nothing"
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
        assert source in allowed, f"COPY {source}: .dockerignore keeps it out of the context"
    # pip builds the package from these: the readme pyproject.toml names, and the package.
    assert {project()["readme"], "pyproject.toml", "monitor"} <= set(sources)


def test_dockerfile_runs_the_service_reachable_from_outside_the_container() -> None:
    (cmd,) = instruction("CMD")
    argv = json.loads(cmd)
    assert argv == ["monitor", "run", "--health-host", "0.0.0.0"]
    assert argv[0] in project()["scripts"]
    check_run_command(argv[1:], "Dockerfile CMD")
    # Without the override the health server would listen on the container's loopback only.
    assert cli_option("--health-host").default == "127.0.0.1"


def health_url(command: list[str]) -> tuple[int, str]:
    match = re.search(r"http://127\.0\.0\.1:(\d+)(/[\w/]*)", " ".join(command))
    assert match, f"no health URL in {command}"
    return int(match.group(1)), match.group(2)


def test_healthchecks_call_the_health_endpoint_on_its_default_port() -> None:
    command = healthcheck_command()
    port = cli_option("--health-port").default
    assert health_url(command) == (port, HEALTH_PATH)
    assert instruction("EXPOSE") == [str(port)]
    assert service("monitor")["healthcheck"]["test"] == ["CMD", *command]
    served = [p for p in (ROOT / "monitor").rglob("*.py") if f'"{HEALTH_PATH}"' in p.read_text()]
    assert served, f"no module of the package serves {HEALTH_PATH}"


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == HEALTH_PATH else 404)
        self.end_headers()
        self.wfile.write(b"database does not answer\n" if self.status != 200 else b"ok\n")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[HTTPServer]:
    server = HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(("status", "exit_code"), [(200, 0), (503, 1)])
def test_healthcheck_command_exits_as_docker_expects(
    health_server: HTTPServer, status: int, exit_code: int
) -> None:
    """Docker reads exit 0 as healthy and 1 as unhealthy; run the real command against a real
    server that answers like /healthz, with only the port changed."""
    _Health.status = status
    port, _ = health_url(healthcheck_command())
    argv = [
        a.replace(f":{port}/", f":{health_server.server_address[1]}/")
        for a in healthcheck_command()
    ]
    assert argv[0] == "python"
    result = subprocess.run([sys.executable, *argv[1:]], capture_output=True, timeout=30)
    assert result.returncode == exit_code, result.stderr


# --- .env.example -----------------------------------------------------------------------------


def interpolated(path: Path) -> set[str]:
    """The variables a compose file takes from .env or the shell (`${NAME}`, `$NAME`)."""
    return set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", path.read_text(encoding="utf-8")))


def referenced_variables() -> set[str]:
    """Variables that the compose files interpolate or docker-compose.yml sets, and that the
    example channels file names (commented-out receivers too: uncommenting one must not need
    a new variable). The scale file's `environment:` values are its own, not .env's."""
    names = interpolated(COMPOSE_FILE) | interpolated(SCALE_FILE)
    for svc in compose()["services"].values():
        environment = svc.get("environment", {})
        names |= set(environment if isinstance(environment, dict) else [])
    channels = CHANNELS_FILE.read_text(encoding="utf-8")
    return names | set(re.findall(r"_env:\s*([A-Z_][A-Z0-9_]*)", channels))


def test_env_example_names_every_variable_and_only_used_ones() -> None:
    names = set(env_example())
    assert {"SMTP_USER", "SMTP_PASSWORD", "OPS_HOOK_SECRET", "MONITOR_LOG_FORMAT", "TZ"} <= names
    assert referenced_variables() - names == set()
    unused = names - referenced_variables() - cli_envvars() - {"TZ", TOKEN_ENV}
    assert not unused, f".env.example sets variables nothing reads: {unused}"
    assert TOKEN_ENV in names  # the container's console listens on 0.0.0.0: it needs one
    assert all(not env_example()[n] for n in names if re.search("PASSWORD|SECRET|TOKEN", n))


def test_env_example_log_format_is_a_value_monitor_accepts() -> None:
    option = cli_option("--log-format")
    assert option.envvar == "MONITOR_LOG_FORMAT"
    value = env_example()["MONITOR_LOG_FORMAT"]
    assert option.type(value, option, None) == value  # a Choice raises on anything else


# --- deploy/monitor.service -------------------------------------------------------------------


def test_systemd_unit_runs_monitor_as_a_restartable_service() -> None:
    svc = unit()["Service"]
    assert (svc["Type"], svc["Restart"]) == ("exec", "on-failure")
    assert svc["User"] not in {"root", "0"} and svc["Group"] == svc["User"]
    workdir = PurePosixPath(svc["WorkingDirectory"])
    assert workdir.is_absolute()
    assert PurePosixPath(svc["EnvironmentFile"]) == workdir / ".env"
    # The database folder (--db's default) is the only one the hardened unit may write.
    db_dir = workdir / PurePosixPath(str(cli_option("--db").default)).parent
    assert svc["ReadWritePaths"].split() == [str(db_dir)]
    assert int(svc["TimeoutStopSec"].removesuffix("s")) > 10
    assert unit()["Install"]["WantedBy"] == "multi-user.target"


def test_systemd_unit_starts_a_command_that_exists() -> None:
    svc = unit()["Service"]
    program, *args = shlex.split(svc["ExecStart"])
    # Installed as the README installs it: a virtual environment .venv in the project folder.
    assert PurePosixPath(program) == PurePosixPath(svc["WorkingDirectory"]) / ".venv/bin/monitor"
    assert PurePosixPath(program).name in project()["scripts"]
    check_run_command(args, "deploy/monitor.service ExecStart")
    assert svc["ExecReload"] == "/bin/kill -HUP $MAINPID"


def test_systemd_unit_passes_systemd_analyze_where_available() -> None:
    """systemd's own parser: only the executable, which exists once installed, may be missing."""
    assert UNIT_FILE.name.endswith(".service")
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        assert unit().has_section("Service")
        return
    result = subprocess.run(
        [analyze, "verify", str(UNIT_FILE)], capture_output=True, text=True, timeout=30
    )
    complaints = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and "/.venv/bin/monitor is not executable" not in line
    ]
    assert not complaints, complaints
