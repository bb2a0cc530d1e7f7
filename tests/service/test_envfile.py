"""`.env` for a plain `monitor run`: read from the working directory, never overriding what is
set, parsed the common way, refused with file:line when a line is not a setting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.errors import ConfigError
from monitor.service.envfile import load_env_file, read_env_file
from tests.ingest.test_poll import TWO
from tests.support.feedserver import FeedServer, serve
from tests.support.receivers import SmtpCatcher
from tests.support.service import RunningService, monitor_once

PASSWORD = "env-file-password-42"


def env_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / ".env"
    path.write_text(text, encoding="utf-8")
    return path


def test_lines_comments_quotes_and_export(tmp_path: Path) -> None:
    path = env_file(
        tmp_path,
        "# settings\n"
        "\n"
        "PLAIN=value with spaces   # a comment\n"
        "export EXPORTED=yes\n"
        "EMPTY=\n"
        "  SPACED = around  \n"
        "HASH=abc#def\n"
        "SINGLE='kept as $written \\n # not a comment'\n"
        'DOUBLE="line\\nbreak, \\"quoted\\" # inside" # outside\n'
        'PEM="-----BEGIN KEY-----\n'
        "abc\n"
        '-----END KEY-----"\n',
    )
    assert read_env_file(path) == {
        "PLAIN": "value with spaces",
        "EXPORTED": "yes",
        "EMPTY": "",
        "SPACED": "around",
        "HASH": "abc#def",
        "SINGLE": "kept as $written \\n # not a comment",
        "DOUBLE": 'line\nbreak, "quoted" # inside',
        "PEM": "-----BEGIN KEY-----\nabc\n-----END KEY-----",
    }


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("A=1\nthis is not a setting\n", 2, "not a NAME=value line (it has no '=')"),
        ("A=1\n\n9LIVES=x\n", 3, "not a NAME=value line: '9LIVES' is not a variable name"),
        ('A=1\nB="never closed\nC=3\n', 2, 'the value of B opens a " quote that is never closed'),
        ("A='x' y\n", 1, "unexpected 'y' after the quoted value of A"),
    ],
)
def test_a_bad_line_is_named_with_file_and_line(
    tmp_path: Path, text: str, line: int, words: str
) -> None:
    path = env_file(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        read_env_file(path)
    assert str(caught.value).startswith(f"{path}:{line}: {words}")
    assert "\n" not in str(caught.value)


def test_variables_already_set_win(tmp_path: Path) -> None:
    path = env_file(tmp_path, "SET=from-file\nUNSET=from-file\n")
    environ = {"SET": "from-environment"}
    assert load_env_file(path, environ) == ["UNSET"]
    assert environ == {"SET": "from-environment", "UNSET": "from-file"}
    assert load_env_file(tmp_path / "absent.env", environ) == []


def test_a_plain_run_reads_dotenv_for_secrets_and_settings(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    (rules / "alerts").mkdir(parents=True)
    (rules / "alerts" / "asia.yaml").write_text(
        "rules:\n  - id: strait\n    title: Strait\n    query: '\"Taiwan Strait\"'\n", "utf-8"
    )
    with FeedServer() as server, SmtpCatcher(users={"desk-login": PASSWORD}) as smtp:
        (rules / "feeds.yaml").write_text(
            f"feeds:\n  - url: {server.add('/one.xml', serve(TWO))}\n", encoding="utf-8"
        )
        (rules / "channels.yaml").write_text(
            "receivers:\n  - id: desk\n    email: {to: [desk@example.org], from: m@example.org,"
            f" smtp: {{host: 127.0.0.1, port: {smtp.port},"
            " username_env: SMTP_USER, password_env: SMTP_PASSWORD}}\n"
            "routes:\n  - {id: desk-now, receiver: desk, schedule: immediate}\n",
            encoding="utf-8",
        )
        env_file(
            tmp_path,
            "MONITOR_LOG_FORMAT=json\n"
            f"SMTP_PASSWORD='{PASSWORD}'\n"
            "SMTP_USER=someone-else  # the environment's value wins\n",
        )
        service = RunningService(
            rules, tmp_path / "monitor.db", env={"SMTP_USER": "desk-login"}, cwd=tmp_path
        )
        try:
            service.wait_for("delivered to desk")
        finally:
            assert service.stop() == 0
        [mail] = smtp.messages
    assert mail.login == "desk-login"  # the user from the environment, the password from .env
    records = [json.loads(line) for line in service.seen]  # MONITOR_LOG_FORMAT from .env
    assert all({"ts", "level", "msg"} <= record.keys() for record in records)
    assert PASSWORD not in "\n".join(service.seen)


def test_a_bad_dotenv_stops_run_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    env_file(tmp_path, "SMTP_USER=desk\nSMTP_PASSWORD hunter2\n")
    result = monitor_once("--rules", "rules", "--db", "monitor.db", "run", cwd=tmp_path)
    assert result.returncode == 1
    assert "monitor: .env:2: not a NAME=value line (it has no '=')" in result.stderr
    assert "hunter2" not in result.stderr


def test_a_bad_setting_in_dotenv_is_named(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    env_file(tmp_path, "MONITOR_LOG_FORMAT=xml\n")
    result = monitor_once("run", cwd=tmp_path)
    assert result.returncode == 1
    expected = "monitor: .env: MONITOR_LOG_FORMAT: Invalid value for '--log-format': 'xml'"
    assert expected in result.stderr, result.stderr
