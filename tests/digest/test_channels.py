"""rules/channels.yaml: receivers and routes, validated with file:line:column errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.digest.channels import Channels, load_channels, resolve_secret
from monitor.digest.cron import schedule_trigger
from monitor.errors import ConfigError, MonitorError
from monitor.models import (
    EmailReceiver,
    Receiver,
    Route,
    RouteMatch,
    SmtpServer,
    WebhookReceiver,
)

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "channels.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, **known: list[str]) -> Channels:
    return load_channels(write(tmp_path, text), **known)


def error_of(tmp_path: Path, text: str, **known: list[str]) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, **known)
    return str(caught.value)


# --- valid files -----------------------------------------------------------------------------

FULL = """\
# Fixture: every key of the format with non-default values. Expect: all of them loaded.
receivers:
  - id: analysts
    email:
      to: [desk@example.org, "Night desk <night@example.org>"]
      cc: [chief@example.org]
      from: Monitor <monitor@example.org>
      smtp: {host: smtp.example.org, port: 2525, tls: starttls, username_env: SMTP_USER,
             password_env: SMTP_PASSWORD, timeout: 10s}
  - id: legacy
    email:
      to: ops@localhost
      from: monitor@example.org
      smtp: {host: mail.example.org, starttls: true}
  - id: ops
    webhook: {url: "https://hooks.example.org/monitor", secret_env: OPS_HOOK_SECRET,
              headers: {X-Team: crisis}, format: slack, timeout: 5s}
routes:
  - id: analysts-morning
    receiver: analysts
    match: {severity: [high, critical], rules: [taiwan-strait], regions: [TW, JP],
            labels: {desk: asia}}
    schedule: "0 7 * * 1-5"
    timezone: Asia/Tokyo
    group_by: [region, story]
    max_items: 20
    send_empty: true
    repeat: full
    max_age: 2d
  - receiver: ops
    schedule: immediate
  - receiver: ops
    match: {severity: critical}
    schedule: "@daily"
"""


def test_full_file_loads_every_key(tmp_path: Path) -> None:
    channels = load(tmp_path, FULL, known_rules=["taiwan-strait"], known_regions=["TW", "JP"])
    assert channels.receivers["analysts"] == Receiver(
        id="analysts",
        email=EmailReceiver(
            to=("desk@example.org", "Night desk <night@example.org>"),
            cc=("chief@example.org",),
            sender="Monitor <monitor@example.org>",
            smtp=SmtpServer(
                host="smtp.example.org",
                port=2525,
                tls="starttls",
                username_env="SMTP_USER",
                password_env="SMTP_PASSWORD",
                timeout=10.0,
            ),
        ),
    )
    assert channels.receivers["ops"].webhook == WebhookReceiver(
        url="https://hooks.example.org/monitor",
        secret_env="OPS_HOOK_SECRET",
        headers={"X-Team": "crisis"},
        format="slack",
        timeout=5.0,
    )
    assert channels.routes[0] == Route(
        id="analysts-morning",
        receiver="analysts",
        match=RouteMatch(
            severity=("high", "critical"),
            rules=("taiwan-strait",),
            regions=("TW", "JP"),
            labels={"desk": "asia"},
        ),
        # Cron's 1-5 is Monday to Friday; written as names so APScheduler 3 (0 = Monday)
        # reads it the same way.
        schedule="0 7 * * mon,tue,wed,thu,fri",
        timezone="Asia/Tokyo",
        group_by=("region", "story"),
        max_items=20,
        send_empty=True,
        repeat="full",
        max_age=timedelta(days=2),
    )


def test_synonyms_and_single_values(tmp_path: Path) -> None:
    channels = load(tmp_path, FULL)
    legacy = channels.receivers["legacy"].email
    assert legacy is not None
    # `starttls: true` is ARCHITECTURE's spelling; the port defaults to the submission port.
    assert (legacy.smtp.tls, legacy.smtp.port) == ("starttls", 587)
    assert legacy.to == ("ops@localhost",)  # a single address counts as a list of one
    assert channels.routes[2].match.severity == ("critical",)
    assert channels.routes[2].schedule == "0 0 * * *"  # @daily


def test_story_keys_of_a_route(tmp_path: Path) -> None:
    text = HEAD + "routes:\n  - {receiver: desk, languages: [ja, zh-TW, en], updates: true}\n"
    [route] = load(tmp_path, text).routes
    assert route.languages == ("ja", "zh-tw", "en") and route.updates is True
    [plain] = load(tmp_path, HEAD + "routes:\n  - receiver: desk\n").routes
    assert plain.languages == () and plain.updates is False


def test_derived_route_ids_never_rename_the_first_route(tmp_path: Path) -> None:
    channels = load(tmp_path, FULL)
    assert [route.id for route in channels.routes] == ["analysts-morning", "ops", "ops-2"]


def test_defaults(tmp_path: Path) -> None:
    text = """\
# Fixture: the minimum of each kind. Expect: every default of the models.
receivers:
  - id: desk
    email: {to: [desk@example.org], from: monitor@example.org, smtp: {host: localhost}}
  - id: hook
    webhook: {url: "http://127.0.0.1:8080/in"}
routes:
  - receiver: desk
"""
    channels = load(tmp_path, text)
    assert channels.receivers["desk"].email == EmailReceiver(
        to=("desk@example.org",), sender="monitor@example.org", smtp=SmtpServer(host="localhost")
    )
    assert channels.receivers["hook"].webhook == WebhookReceiver(url="http://127.0.0.1:8080/in")
    assert channels.routes == (Route(id="desk", receiver="desk"),)


@pytest.mark.parametrize("text", ["", "# only a comment\n", "receivers:\nroutes:\n"])
def test_empty_files_mean_nothing_to_send(tmp_path: Path, text: str) -> None:
    assert load(tmp_path, text) == Channels(receivers={}, routes=())


def test_missing_file_means_nothing_to_send(tmp_path: Path) -> None:
    assert load_channels(tmp_path / "absent.yaml") == Channels(receivers={}, routes=())


def test_example_file_loads_without_any_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SMTP_USER", "SMTP_PASSWORD", "OPS_HOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    channels = load_channels(REPO / "rules" / "channels.yaml")
    email = channels.receivers["local-mail"].email
    assert email is not None
    assert (email.smtp.host, email.smtp.port, email.smtp.tls) == ("localhost", 1025, "none")
    assert [route.receiver for route in channels.routes] == ["local-mail"]


def test_weekday_numbers_mean_what_cron_means() -> None:
    # 2024-01-06 is a Saturday. Cron's `0` is Sunday (APScheduler's own `0` is Monday).
    saturday = datetime(2024, 1, 6, tzinfo=UTC)
    for schedule, expected_day in (("0 7 * * 0", 7), ("0 7 * * 7", 7), ("0 7 * * 1", 8)):
        trigger = schedule_trigger(Route(id="r", receiver="x", schedule=schedule))
        assert trigger is not None
        assert trigger.get_next_fire_time(None, saturday).day == expected_day, schedule
    assert schedule_trigger(Route(id="r", receiver="x")) is None  # immediate


_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")  # cron's 0-7


@settings(max_examples=60, deadline=None)
@given(st.sets(st.integers(min_value=0, max_value=7), min_size=1), st.booleans())
def test_any_weekday_list_fires_on_cron_days(days: set[int], as_names: bool) -> None:
    # Checked against APScheduler itself: the week from Sunday 2024-01-07 fires exactly on the
    # days cron means (cron's 0 and 7 are Sunday; Python's weekday() counts from Monday).
    words = [_DAY_NAMES[day] if as_names else str(day) for day in days]
    trigger = schedule_trigger(Route(id="r", receiver="x", schedule="0 7 * * " + ",".join(words)))
    assert trigger is not None
    expected = {(day - 1) % 7 for day in days}
    fired, now = set(), datetime(2024, 1, 7, tzinfo=UTC)
    for _ in expected:
        now = trigger.get_next_fire_time(None, now) + timedelta(minutes=1)
        fired.add(now.weekday())
    assert fired == expected
    assert now < datetime(2024, 1, 14, tzinfo=UTC)  # all within that one week


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("1-5", "mon,tue,wed,thu,fri"),
        ("*/2", "tue,thu,sat,sun"),  # cron counts from Sunday: 0, 2, 4, 6
        ("fri-sun", "fri,sat,sun"),
        ("SAT,0", "sat,sun"),
        ("0-7", "*"),
        ("1/3", "mon,thu"),
    ],
)
def test_weekday_field_is_rewritten_to_names(tmp_path: Path, field: str, expected: str) -> None:
    text = f"""\
receivers: [{{id: d, webhook: {{url: "https://example.org/h"}}}}]
routes: [{{receiver: d, schedule: "30 6 * * {field}"}}]
"""
    assert load(tmp_path, text).routes[0].schedule == f"30 6 * * {expected}"


# --- errors: one test per mistake, with its exact place --------------------------------------

HEAD = """\
receivers:
  - id: desk
    email:
      to: [desk@example.org]
      from: monitor@example.org
      smtp: {host: localhost, port: 1025}
"""
# Fixture: a valid receiver on lines 1-6 ("desk"). Each case below adds or replaces one
# piece; expected: a ConfigError starting with `file:line:column:` and containing the words.


def route(extra: str) -> str:
    """HEAD plus `routes:` on line 7 and one route on line 8; `extra` starts on column 22."""
    return HEAD + "routes:\n  - {receiver: desk, " + extra + "}\n"


def receiver(extra: str) -> str:
    """One receiver on line 2; `extra` starts on column 13."""
    return "receivers:\n  - {id: x, " + extra + "}\n"


# fmt: off
ERRORS = [
    # (case, file text, "line:column", words of the message)
    ("unknown top key", HEAD + "route:\n", "7:1",
     "unknown key 'route' in the top level; did you mean 'routes'?"),
    ("unknown route key", route("shedule: immediate"), "8:22", "did you mean 'schedule'?"),
    ("unknown match key", route("match: {severty: [high]}"), "8:30", "did you mean 'severity'?"),
    ("receivers not a list", "receivers: {id: desk}\n", "1:12", "'receivers' must be a list"),
    ("routes not a list", HEAD + "routes: desk\n", "7:9", "'routes' must be a list"),
    ("unknown receiver", HEAD + "routes:\n  - receiver: dsk\n", "8:15",
     "unknown receiver 'dsk' (did you mean 'desk'?)"),
    ("route without receiver", HEAD + "routes:\n  - schedule: immediate\n", "8:5",
     "this route has no 'receiver'"),
    ("duplicate receiver id", HEAD + "  - {id: desk, webhook: {url: 'https://e.org/h'}}\n", "7:5",
     "duplicate receiver id 'desk': already used on line 2"),
    ("duplicate route id",
     HEAD + "routes:\n  - {id: a, receiver: desk}\n  - {id: a, receiver: desk}\n", "9:5",
     "duplicate route id 'a': already used on line 8"),
    ("derived id clash", HEAD + "routes:\n  - {id: desk-2, receiver: desk}\n  - {receiver: desk}\n",
     "9:5", "duplicate route id 'desk-2' (derived from its receiver): already used on line 8"),
    ("bad route id", route("id: Morning Desk"), "8:26", "bad route id 'Morning Desk'"),
    ("bad severity", route("match: {severity: [high, urgent]}"), "8:47",
     "'severity' must be one of info, low, medium, high, critical, got 'urgent'"),
    ("repeated severity", route("match: {severity: [high, high]}"), "8:47",
     "'high' is listed twice in 'severity'"),
    ("bad group_by", route("group_by: [rule, feed]"), "8:39",
     "'group_by' must be one of rule, region, severity, story, got 'feed'"),
    ("max_items 0", route("max_items: 0"), "8:33",
     "'max_items' must be a whole number of at least 1"),
    ("send_empty not a bool", route("send_empty: sometimes"), "8:34",
     "'send_empty' must be true or false"),
    ("bad repeat", route("repeat: twice"), "8:30",
     "'repeat' must be one of reference, full, got 'twice'"),
    ("max_age without unit", route("max_age: 2"), "8:31",
     "'max_age' must be a duration with a unit"),
    ("max_age too short", route("max_age: 10s"), "8:31", "'max_age' must be at least 1m"),
    ("unknown language", route("languages: [en, jp]"), "8:38",
     "unknown language code 'jp' in 'languages' (did you mean 'ja'?)"),
    ("made-up language", route("languages: [xx-yy]"), "8:34",
     "unknown language code 'xx-yy' in 'languages' (two-letter ISO 639-1 codes"),
    ("language twice", route("languages: [ko, KO]"), "8:38", "'ko' is listed twice in 'languages'"),
    ("updates not a bool", route("updates: always"), "8:31", "'updates' must be true or false"),
    ("unknown timezone", route("timezone: Asia/Tokio"), "8:32",
     "unknown timezone 'Asia/Tokio' (did you mean 'Asia/Tokyo'?)"),
    ("labels with a list", route("match: {labels: {desk: [a, b]}}"), "8:45",
     "label 'desk' must have one value"),
    ("cron: 4 fields", route("schedule: '0 7 * *'"), "8:32",
     "bad schedule '0 7 * *': 4 fields, cron has 5"),
    ("cron: minute 61", route("schedule: '61 7 * * *'"), "8:32",
     "the last value (61) is higher than the maximum value (59)"),
    ("cron: weekday 8", route("schedule: '0 7 * * 8'"), "8:32", "bad day of week '8'"),
    ("cron: wrapping range", route("schedule: '0 7 * * 5-1'"), "8:32",
     "the weekday range '5-1' wraps around"),
    ("cron: both days", route("schedule: '0 7 1 * mon'"), "8:32",
     "restricts both the day of month and of week"),
    ("cron: never runs", route("schedule: '0 7 31 2 *'"), "8:32", "never runs (no such date)"),
    # smtp (line 6: `      smtp: {` is 13 characters)
    ("port 0", HEAD.replace("port: 1025", "port: 0"), "6:37",
     "'port' must be a whole number of at least 1"),
    ("port too big", HEAD.replace("port: 1025", "port: 70000"), "6:37",
     "'port' must be between 1 and 65535, got 70000"),
    ("port as text", HEAD.replace("port: 1025", "port: smtp"), "6:37",
     "'port' must be a whole number"),
    ("bad tls", HEAD.replace("port: 1025", "tls: ssl"), "6:36",
     "'tls' must be one of none, starttls, tls, got 'ssl'"),
    ("tls and starttls", HEAD.replace("port: 1025", "tls: none, starttls: true"), "6:42",
     "write 'tls' or 'starttls', not both"),
    ("no host", HEAD.replace("host: localhost, ", ""), "6:7", "'smtp' has no 'host'"),
    ("host is a URL", HEAD.replace("host: localhost", "host: 'smtp.x.org/'"), "6:20",
     "'host' must be a host name or address"),
    ("lower-case variable", HEAD.replace("port: 1025", "username_env: U, password_env: pw"), "6:62",
     "'password_env' must name an environment variable, got 'pw'"),
    ("user without password", HEAD.replace("port: 1025", "username_env: SMTP_USER"), "6:7",
     "'smtp' logs in with both variables or neither: add 'password_env'"),
    # addresses (line 4: `      to: [` is 11 characters)
    ("address without @", HEAD.replace("[desk@", "[desk."), "4:12",
     "bad email address 'desk.example.org' in 'to': it is not of the form name@domain"),
    ("two addresses in one", HEAD.replace("[desk@example.org", "['a@x.org, b@x.org'"), "4:12",
     "it holds several addresses: write one per list entry"),
    ("domain without dot", HEAD.replace("@example.org]", "@example]"), "4:12",
     "the domain 'example' has no dot"),
    ("bad domain", HEAD.replace("@example.org]", "@-example.org]"), "4:12",
     "'-example.org' is not a valid domain"),
    ("header injection", HEAD.replace("[desk@example.org", '["d@x.org\\nBcc: a@x.org"'), "4:12",
     "it contains a line break or control character"),
    ("empty address", HEAD.replace("desk@example.org]", "desk@example.org, '']"), "4:30",
     "'to' must be a non-empty string"),
    ("bad from", HEAD.replace("from: monitor@example.org", "from: monitor"), "5:13",
     "bad email address 'monitor' in 'from'"),
    # receivers (line 2: `  - {id: x, ` is 12 characters)
    ("neither kind", "receivers:\n  - id: x\n", "2:5",
     "receiver 'x' has neither 'email' nor 'webhook'"),
    ("both kinds", receiver("webhook: {url: 'https://e.org/h'}, email: {}"), "2:5",
     "receiver 'x' has both 'email' and 'webhook'"),
    ("receiver without id", "receivers:\n  - webhook: {url: 'https://e.org/h'}\n", "2:5",
     "this receiver has no 'id'"),
    ("email without from", receiver("email: {to: [a@example.org], smtp: {host: h}}"), "2:13",
     "this email receiver has no 'from'"),
    ("webhook without url", receiver("webhook: {format: json}"), "2:13",
     "this webhook has no 'url'"),
    ("empty to", receiver("email: {to: [], from: m@example.org, smtp: {host: h}}"), "2:25",
     "'to' lists no address"),
    ("ftp url", receiver("webhook: {url: 'ftp://e.org/h'}"), "2:28",
     "'url' must be an absolute http(s) URL"),
    ("relative url", receiver("webhook: {url: /hook}"), "2:28",
     "'url' must be an absolute http(s) URL"),
    ("user in url", receiver("webhook: {url: 'https://bot@e.org/h'}"), "2:28",
     "the webhook 'url' carries credentials"),
    ("bad format", receiver("webhook: {url: 'https://e.org/h', format: teams}"), "2:55",
     "'format' must be one of json, slack, got 'teams'"),
    ("reserved header", receiver("webhook: {url: 'http://e.org', headers: {Webhook-Id: x}}"),
     "2:54", "the header 'Webhook-Id' is set by monitor itself"),
    ("bad header name", receiver("webhook: {url: 'http://e.org', headers: {'X Team': x}}"),
     "2:54", "bad header name 'X Team'"),
]
SECRETS = [
    # (case, file text, "line:column", words of the hint)
    ("smtp password", HEAD.replace("port: 1025", "password: hunter2"), "6:31",
     "write 'password_env: SMTP_PASSWORD'"),
    ("webhook secret", receiver("webhook: {url: 'https://e.org/h', secret: whsec_abc}"), "2:47",
     "write 'secret_env: HOOK_SECRET'"),
    ("token", receiver("webhook: {url: 'https://e.org/h', token: hunter2}"), "2:47",
     "name a variable"),
    ("api key header", receiver("webhook: {url: 'http://e.org', headers: {X-Api-Key: a}}"),
     "2:54", "name a variable"),
    ("authorization header",
     receiver("webhook: {url: 'http://e.org', headers: {Authorization: a}}"), "2:54",
     "name a variable"),
    ("user:password@", receiver("webhook: {url: 'https://bot:hunter2@e.org/h'}"), "2:28",
     "use secret_env"),
    ("token in the query", receiver("webhook: {url: 'https://e.org/h?token=hunter2'}"), "2:28",
     "use secret_env"),
    ("secret under a typo", receiver("emial: {smtp: {pass: hunter2}}"), "2:28",
     "write 'password_env: SMTP_PASSWORD'"),
]
# fmt: on


def _cases(table: list[tuple[str, str, str, str]]) -> list[Any]:
    return [pytest.param(*case[1:], id=case[0]) for case in table]


@pytest.mark.parametrize(("text", "where", "words"), _cases(ERRORS))
def test_each_mistake_names_its_place(tmp_path: Path, text: str, where: str, words: str) -> None:
    message = error_of(tmp_path, text)
    assert message.startswith(f"{tmp_path / 'channels.yaml'}:{where}: "), message
    assert words in message


@pytest.mark.parametrize(("text", "where", "hint"), _cases(SECRETS))
def test_secrets_in_the_file_are_refused(tmp_path: Path, text: str, where: str, hint: str) -> None:
    message = error_of(tmp_path, text)
    assert message.startswith(f"{tmp_path / 'channels.yaml'}:{where}: "), message
    assert "secret" in message or "credential" in message
    assert hint in message
    assert "hunter2" not in message  # never echo the secret itself


def test_unknown_rules_and_regions_when_known(tmp_path: Path) -> None:
    text = route("match: {rules: [taiwan-strait, korea-nuke], regions: [TW, tw]}")
    message = error_of(tmp_path, text, known_rules=["taiwan-strait", "korea-nuclear"])
    assert ":8:53: unknown rule 'korea-nuke' (did you mean 'korea-nuclear'?)" in message
    message = error_of(tmp_path, text.replace("korea-nuke", "taiwan-strait"), known_regions=["TW"])
    assert ":8:83: unknown region 'tw' (did you mean 'TW'?)" in message
    # Without the known sets only the shape is checked: the same file loads.
    assert load(tmp_path, text).routes[0].match.regions == ("TW", "tw")


def test_invalid_yaml_names_the_place(tmp_path: Path) -> None:
    message = error_of(tmp_path, HEAD + "routes:\n  - receiver: [desk\n")
    assert message.startswith(f"{tmp_path / 'channels.yaml'}:") and "invalid YAML" in message


# --- secrets at send time --------------------------------------------------------------------


def test_resolve_secret_reads_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPS_HOOK_SECRET", "whsec_abc")
    assert resolve_secret("OPS_HOOK_SECRET", "the signing secret of receiver ops") == "whsec_abc"
    assert resolve_secret(None, "the SMTP password of receiver desk") is None


@pytest.mark.parametrize("value", [None, ""])
def test_resolve_secret_names_a_missing_variable(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv("SMTP_PASSWORD", raising=False)
    else:
        monkeypatch.setenv("SMTP_PASSWORD", value)
    with pytest.raises(MonitorError) as caught:
        resolve_secret("SMTP_PASSWORD", "the SMTP password of receiver desk")
    assert "the SMTP password of receiver desk" in str(caught.value)
    assert "SMTP_PASSWORD" in str(caught.value) and "not set" in str(caught.value)
