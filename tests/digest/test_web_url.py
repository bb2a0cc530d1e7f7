"""`web_url` in rules/channels.yaml: digests link each story to its page in the console.
Real SQLite store, real SMTP server and webhook receiver, as the other story digest tests.
Expected: with it, email text and HTML link each entry to `<web_url>/stories/<id>` and the
webhook's `story` object has `url` (valid under docs/webhook-schema.json); without it the
bodies are exactly what they were; a bad value is refused at its line and column."""

from __future__ import annotations

import json
from datetime import timedelta

import jsonschema
import pytest
from click.testing import CliRunner

from monitor.cli.main import main
from monitor.errors import MonitorError
from monitor.store.outbox import Outbox
from tests.digest.test_stories import HOUR, SCHEMA, freeze, plain, three_outlets
from tests.digest.world import NOW, SECRET, World, email_channels, hook_channels, send
from tests.support.receivers import SmtpCatcher, WebhookCatcher

WEB = "web_url: https://monitor.example.org/desk/\n"


def test_email_digests_link_each_story_to_the_console(world: World) -> None:
    with SmtpCatcher() as smtp:
        channels = world.channels(WEB + email_channels(smtp.port))
        assert channels.web_url == "https://monitor.example.org/desk"
        Outbox(world.store).route_start("desk-now", NOW - HOUR)
        first = three_outlets(world)[0]
        assert freeze(world, channels) is not None
        assert send(world, channels, NOW + timedelta(minutes=10)) == [True]
    [mail] = smtp.messages
    _, text, html = plain(mail.data)
    url = f"https://monitor.example.org/desk/stories/{world.story(first)}"
    assert f"  Story in the console: {url}" in text.splitlines()
    assert f'href="{url}"' in html
    assert text.count("/stories/") == 1  # one entry, one story


def test_webhook_stories_carry_their_console_url(world: World) -> None:
    with WebhookCatcher(secret=SECRET) as hook:
        channels = world.channels(WEB + hook_channels(hook.url))
        Outbox(world.store).route_start("ops-now", NOW - HOUR)
        first = three_outlets(world)[0]
        assert freeze(world, channels) is not None
        assert send(world, channels, NOW + timedelta(minutes=10)) == [True]
    body = json.loads(hook.requests[0].body)
    jsonschema.validate(body, SCHEMA)
    [story] = [item["story"] for group in body["groups"] for item in group["items"]]
    assert story["url"] == f"https://monitor.example.org/desk/stories/{world.story(first)}"


def test_without_web_url_nothing_changes(world: World) -> None:
    with SmtpCatcher() as smtp, WebhookCatcher(secret=SECRET) as hook:
        mail_and_hook = f"""\
receivers:
  - id: desk
    email: {{to: [desk@example.org], from: monitor@example.org,
            smtp: {{host: 127.0.0.1, port: {smtp.port}, tls: none}}}}
  - id: ops
    webhook: {{url: "{hook.url}", secret_env: HOOK_SECRET}}
routes:
  - {{id: desk-now, receiver: desk}}
  - {{id: ops-now, receiver: ops}}
"""
        channels = world.channels(mail_and_hook)
        assert channels.web_url is None
        for route in ("desk-now", "ops-now"):
            Outbox(world.store).route_start(route, NOW - HOUR)
        three_outlets(world)
        world.freeze(channels, NOW + timedelta(minutes=10))
        assert send(world, channels, NOW + timedelta(minutes=10)) == [True, True]
    _, text, html = plain(smtp.messages[0].data)
    assert "/stories/" not in text and "/stories/" not in html
    assert "console" not in text
    body = json.loads(hook.requests[0].body)
    jsonschema.validate(body, SCHEMA)
    assert all("url" not in i["story"] for g in body["groups"] for i in g["items"])


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("ftp://monitor.example.org/", "absolute http(s) URL"),
        ("monitor.example.org", "absolute http(s) URL"),
        ("https://monitor.example.org/?tab=1", "no query"),
        ("[a, b]", "must be"),
    ],
)
def test_a_bad_web_url_is_refused_at_its_place(world: World, value: str, problem: str) -> None:
    with pytest.raises(MonitorError) as raised:
        world.channels(f"routes: []\nweb_url: {value}\n")
    assert "channels.yaml:2:10" in str(raised.value)
    assert problem in str(raised.value)


def test_rules_check_reports_a_bad_web_url(world: World) -> None:
    (world.rules_dir / "channels.yaml").write_text("web_url: mailto:desk@example.org\n")
    result = CliRunner().invoke(main, ["--rules", str(world.rules_dir), "rules", "check"])
    assert result.exit_code != 0
    assert "channels.yaml:1:10" in result.output and "web_url" in result.output
    (world.rules_dir / "channels.yaml").write_text("web_url: https://m.example.org\n")
    fixed = CliRunner().invoke(main, ["--rules", str(world.rules_dir), "rules", "check"])
    assert fixed.exit_code == 0, fixed.output


def test_slack_entries_link_to_the_console_too(world: World) -> None:
    with WebhookCatcher() as hook:
        slack = hook_channels(hook.url).replace("secret_env: HOOK_SECRET", "format: slack")
        channels = world.channels(WEB + slack)
        Outbox(world.store).route_start("ops-now", NOW - HOUR)
        first = three_outlets(world)[0]
        assert freeze(world, channels) is not None
        assert send(world, channels, NOW + timedelta(minutes=10)) == [True]
    body = json.loads(hook.requests[0].body)
    texts = [b["text"]["text"] for b in body["blocks"] if b["type"] == "section"]
    url = f"https://monitor.example.org/desk/stories/{world.story(first)}"
    assert sum(f"<{url}|Story in the console>" in t for t in texts) == 1
