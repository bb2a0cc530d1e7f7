"""`rules/channels.yaml`: receivers (email, webhook) and routes (what goes where, and when).

Validated like every file under `rules/`: each error names `file:line:column`, unknown keys
are errors that suggest the closest known key, and values are checked before the service
ever tries to send (addresses, URLs, ports, time zones, cron expressions: see `channelcheck`
and `cron`).

Secrets never live in this file. A key that holds one (`password:`, `secret:`, `token:`...)
or a URL with `user:password@` is refused wherever it appears, before anything else is
checked, so the message is about the secret and not about an unknown key. Only the *names*
of environment variables are kept (`password_env: SMTP_PASSWORD`); `resolve_secret` reads
them when a message is sent, so the file loads without them.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from monitor.digest.channelcheck import (
    HEADER_RE,
    REGION_RE,
    RESERVED_HEADERS,
    RULE_RE,
    as_address,
    as_addresses,
    as_env_name,
    as_host,
    as_id,
    as_known,
    as_languages,
    as_list,
    as_port,
    as_url,
    as_web_url,
    did_you_mean,
    secret_in_key,
    secret_in_url,
    walk,
)
from monitor.digest.cron import as_schedule, as_timezone
from monitor.digest.surgecheck import route_surge, surge_settings
from monitor.errors import MonitorError
from monitor.models import (
    SEVERITIES,
    EmailReceiver,
    Receiver,
    Route,
    RouteMatch,
    SmtpServer,
    WebhookReceiver,
)
from monitor.story.surge import KINDS, SurgeSettings
from monitor.yamlfile.check import (
    Checker,
    Pos,
    as_bool,
    as_choice,
    as_duration,
    as_int,
    as_seconds,
    as_text,
    item_pos,
    key_pos,
    parse_yaml,
    read_text,
    value_pos,
)

__all__ = ["Channels", "load_channels", "resolve_secret"]

TOP_KEYS = ("receivers", "routes", "surge", "web_url")
RECEIVER_KEYS = ("id", "email", "webhook")
EMAIL_KEYS = ("to", "cc", "from", "smtp")
SMTP_KEYS = ("host", "port", "tls", "starttls", "username_env", "password_env", "timeout")
WEBHOOK_KEYS = ("url", "secret_env", "headers", "format", "timeout")
ROUTE_KEYS = (
    "id",
    "receiver",
    "match",
    "schedule",
    "timezone",
    "group_by",
    "max_items",
    "send_empty",
    "give_up_after",
    "repeat",
    "max_age",
    "surge",
    "languages",
    "updates",
)
MATCH_KEYS = ("severity", "rules", "regions", "labels", "surge")
TLS_MODES = ("none", "starttls", "tls")
FORMATS = ("json", "slack")
GROUP_BY = ("rule", "region", "severity", "story")
REPEAT = ("reference", "full")  # items the receiver already got from another route
DEFAULT_PORTS = {"none": 25, "starttls": 587, "tls": 465}


@dataclass(frozen=True)
class Channels:
    """A validated `channels.yaml`: receivers by id, routes in file order."""

    receivers: Mapping[str, Receiver]
    routes: tuple[Route, ...]
    surge: SurgeSettings = field(default_factory=SurgeSettings)  # routes may override it
    web_url: str | None = None  # the console's address: digests link stories to it


def load_channels(
    path: Path,
    known_rules: Collection[str] | None = None,
    known_regions: Collection[str] | None = None,
) -> Channels:
    """Read and validate `channels.yaml`. A missing file means no receivers and no routes.
    Rule ids and region codes are checked only when the known ones are given."""
    if not path.exists():
        return Channels(receivers=MappingProxyType({}), routes=())
    doc = parse_yaml(read_text(path), path)
    return _ChannelsChecker(path, known_rules, known_regions).document(doc)


def resolve_secret(env_name: str | None, what: str) -> str | None:
    """The value of the variable `env_name` (None when no variable is named). `what` says
    what needs it, e.g. "the SMTP password of receiver analysts"."""
    if env_name is None:
        return None
    value = os.environ.get(env_name)
    if not value:
        raise MonitorError(
            f"{what} is read from the environment variable {env_name}, which is not set or empty",
            hint=f"set {env_name} in the service's environment (never in rules/channels.yaml)",
        )
    return value


# --- the document ----------------------------------------------------------------------------


class _ChannelsChecker(Checker):
    def __init__(
        self, path: Path, known_rules: Collection[str] | None, known_regions: Collection[str] | None
    ) -> None:
        super().__init__(path)
        self.known_rules = known_rules
        self.known_regions = known_regions
        self.surge = SurgeSettings()

    def document(self, doc: Any) -> Channels:
        if doc is None:  # an empty file, or only comments
            return Channels(receivers=MappingProxyType({}), routes=())
        top = self.mapping(doc, (1, 1), "the top level")
        self.refuse_secrets(top)
        self.keys(top, TOP_KEYS, "the top level")
        receivers = self.receivers(self.entries(top, "receivers"))
        self.surge = surge_settings(self, top, "surge", SurgeSettings())
        routes = self.routes(self.entries(top, "routes"), receivers)
        web_url = self.value(top, "web_url", as_web_url, None)
        return Channels(MappingProxyType(receivers), routes, self.surge, web_url)

    def refuse_secrets(self, top: CommentedMap) -> None:
        for parent, key, value in walk(top):
            if isinstance(parent, CommentedMap) and (problem := secret_in_key(key)):
                self.fail(problem[0], key_pos(parent, key), hint=problem[1])
            if problem := secret_in_url(value):
                pos = value_pos(parent, key) if isinstance(parent, CommentedMap) else None
                self.fail(problem[0], pos or item_pos(parent, key), hint=problem[1])

    def entries(self, top: CommentedMap, key: str) -> list[tuple[Pos, Any]]:
        if top.get(key) is None:
            return []
        seq = top[key]
        if not isinstance(seq, CommentedSeq):
            self.fail(f"'{key}' must be a list of '- id: ...' entries", value_pos(top, key))
        return [(item_pos(seq, index), node) for index, node in enumerate(seq)]

    def unique(self, seen: dict[str, Pos], what: str, value: str, pos: Pos, how: str = "") -> None:
        first = seen.setdefault(value, pos)
        if first != pos:
            line = first[0] if first else "?"
            message = f"duplicate {what} {value!r}{how}: already used on line {line}"
            self.fail(message, pos, hint=f"give each {what.split()[0]} its own 'id:'")

    # receivers

    def receivers(self, entries: list[tuple[Pos, Any]]) -> dict[str, Receiver]:
        receivers: dict[str, Receiver] = {}
        seen: dict[str, Pos] = {}
        for pos, node in entries:
            receiver = self.receiver(self.mapping(node, pos, "each receiver"), pos)
            self.unique(seen, "receiver id", receiver.id, pos)
            receivers[receiver.id] = receiver
        return receivers

    def receiver(self, node: CommentedMap, pos: Pos) -> Receiver:
        self.keys(node, RECEIVER_KEYS, "a receiver")
        if "id" not in node:
            self.fail("this receiver has no 'id'", pos, hint="add 'id: analysts' (routes name it)")
        receiver_id = self.value(node, "id", partial(as_id, "receiver id"), "")
        kinds = [kind for kind in ("email", "webhook") if kind in node]
        if len(kinds) != 1:
            what = "both 'email' and 'webhook'" if kinds else "neither 'email' nor 'webhook'"
            hint = "one kind per receiver: make two receivers to use both"
            self.fail(f"receiver {receiver_id!r} has {what}", pos, hint if kinds else None)
        inner = self.mapping(node[kinds[0]], value_pos(node, kinds[0]), f"'{kinds[0]}'")
        if kinds[0] == "email":
            return Receiver(id=receiver_id, email=self.email(inner, key_pos(node, "email")))
        return Receiver(id=receiver_id, webhook=self.webhook(inner, key_pos(node, "webhook")))

    def email(self, node: CommentedMap, pos: Pos) -> EmailReceiver:
        self.keys(node, EMAIL_KEYS, "an email receiver")
        for key in ("to", "from", "smtp"):
            if key not in node:
                self.fail(f"this email receiver has no '{key}'", pos)
        if not node["to"]:
            self.fail("'to' lists no address", value_pos(node, "to"), hint="to: [desk@example.org]")
        smtp = self.mapping(node["smtp"], value_pos(node, "smtp"), "'smtp'")
        return EmailReceiver(
            to=self.value(node, "to", partial(as_addresses, "to"), ()),
            cc=self.value(node, "cc", partial(as_addresses, "cc"), ()),
            sender=self.value(node, "from", partial(as_address, "from"), ""),
            smtp=self.smtp(smtp, key_pos(node, "smtp")),
        )

    def smtp(self, node: CommentedMap, pos: Pos) -> SmtpServer:
        self.keys(node, SMTP_KEYS, "smtp")
        if "host" not in node:
            self.fail("'smtp' has no 'host'", pos, hint="e.g. host: smtp.example.org")
        tls = self.tls(node)
        username = self.value(node, "username_env", partial(as_env_name, "username_env"), None)
        password = self.value(node, "password_env", partial(as_env_name, "password_env"), None)
        if (username is None) != (password is None):
            missing = "password_env" if password is None else "username_env"
            self.fail(f"'smtp' logs in with both variables or neither: add '{missing}'", pos)
        return SmtpServer(
            host=self.value(node, "host", as_host, ""),
            port=self.value(node, "port", partial(as_port, "port"), DEFAULT_PORTS[tls]),
            tls=tls,
            username_env=username,
            password_env=password,
            timeout=self.value(node, "timeout", partial(as_seconds, "timeout"), 30.0),
        )

    def tls(self, node: CommentedMap) -> str:
        """`tls: none|starttls|tls`, or ARCHITECTURE's `starttls: true|false`."""
        if "tls" in node and "starttls" in node:
            hint = "keep 'tls: starttls' (or none, or tls for implicit TLS)"
            self.fail("write 'tls' or 'starttls', not both", key_pos(node, "starttls"), hint)
        if "starttls" in node:
            starttls = self.value(node, "starttls", partial(as_bool, "starttls"), False)
            return "starttls" if starttls else "none"
        return self.value(node, "tls", partial(as_choice, "tls", TLS_MODES), "none")

    def webhook(self, node: CommentedMap, pos: Pos) -> WebhookReceiver:
        self.keys(node, WEBHOOK_KEYS, "a webhook receiver")
        if "url" not in node:
            self.fail("this webhook has no 'url'", pos, hint="add 'url: https://...'")
        return WebhookReceiver(
            url=self.value(node, "url", as_url, ""),
            secret_env=self.value(node, "secret_env", partial(as_env_name, "secret_env"), None),
            headers=self.headers(node),
            format=self.value(node, "format", partial(as_choice, "format", FORMATS), "json"),
            timeout=self.value(node, "timeout", partial(as_seconds, "timeout"), 30.0),
        )

    def headers(self, node: CommentedMap) -> MappingProxyType[str, str]:
        if "headers" not in node:
            return MappingProxyType({})
        headers = self.mapping(node["headers"], value_pos(node, "headers"), "'headers'")
        for name, value in headers.items():
            if not isinstance(name, str) or not HEADER_RE.fullmatch(name):
                self.fail(f"bad header name {name!r}", key_pos(headers, name))
            if name.lower() in RESERVED_HEADERS:
                self.fail(f"the header {name!r} is set by monitor itself", key_pos(headers, name))
            if not isinstance(value, str | int) or any(c in str(value) for c in "\r\n"):
                self.fail(f"header {name!r} must be one line of text", value_pos(headers, name))
        return MappingProxyType({str(k): str(v) for k, v in headers.items()})

    # routes

    def routes(
        self, entries: list[tuple[Pos, Any]], receivers: dict[str, Receiver]
    ) -> tuple[Route, ...]:
        routes: list[Route] = []
        seen: dict[str, Pos] = {}
        per_receiver: dict[str, int] = {}
        for pos, node in entries:
            node = self.mapping(node, pos, "each route")
            receiver = self.route_receiver(node, pos, receivers)
            per_receiver[receiver] = count = per_receiver.get(receiver, 0) + 1
            route = self.route(node, receiver, count)
            how = "" if "id" in node else " (derived from its receiver)"
            self.unique(seen, "route id", route.id, pos, how)
            routes.append(route)
        return tuple(routes)

    def route_receiver(self, node: CommentedMap, pos: Pos, receivers: dict[str, Receiver]) -> str:
        self.keys(node, ROUTE_KEYS, "a route")
        if "receiver" not in node:
            self.fail("this route has no 'receiver'", pos, hint="add 'receiver: ID'")
        name = self.value(node, "receiver", partial(as_text, "receiver"), "")
        if name not in receivers:
            hint = did_you_mean(name, receivers, "receivers") or "no receiver is defined"
            self.fail(f"unknown receiver {name!r}", value_pos(node, "receiver"), hint)
        return name

    def route(self, node: CommentedMap, receiver: str, count: int) -> Route:
        # Derived ids: the first route of a receiver is named after it and later ones get
        # `-2`, `-3`... so adding a route never renames an earlier one. An explicit id is
        # still safer: deliveries are remembered per route id, and reordering or removing a
        # route renumbers the ones after it, which would resend what they already sent.
        derived = receiver if count == 1 else f"{receiver}-{count}"
        timezone = self.value(node, "timezone", as_timezone, "UTC")
        return Route(
            id=self.value(node, "id", partial(as_id, "route id"), derived),
            receiver=receiver,
            match=self.match(node),
            schedule=self.value(
                node, "schedule", partial(as_schedule, timezone=timezone), "immediate"
            ),
            timezone=timezone,
            group_by=self.value(
                node, "group_by", partial(as_list, "group_by", GROUP_BY), ("rule",)
            ),
            max_items=self.value(node, "max_items", partial(as_int, "max_items", 1), 50),
            send_empty=self.value(node, "send_empty", partial(as_bool, "send_empty"), False),
            give_up_after=self.value(
                node,
                "give_up_after",
                partial(as_duration, "give_up_after", timedelta(minutes=1)),
                timedelta(hours=24),
            ),
            repeat=self.value(node, "repeat", partial(as_choice, "repeat", REPEAT), "reference"),
            max_age=self.value(
                node, "max_age", partial(as_duration, "max_age", timedelta(minutes=1)), None
            ),
            surge=route_surge(self, node, self.surge),
            languages=self.value(node, "languages", as_languages, ()),
            updates=self.value(node, "updates", partial(as_bool, "updates"), False),
        )

    def match(self, route: CommentedMap) -> RouteMatch:
        if route.get("match") is None:
            return RouteMatch()
        node = self.mapping(route["match"], value_pos(route, "match"), "'match'")
        self.keys(node, MATCH_KEYS, "match")
        rules = partial(as_known, "rules", RULE_RE, self.known_rules)
        regions = partial(as_known, "regions", REGION_RE, self.known_regions)
        return RouteMatch(
            severity=self.value(node, "severity", partial(as_list, "severity", SEVERITIES), ()),
            rules=self.value(node, "rules", rules, ()),
            regions=self.value(node, "regions", regions, ()),
            labels=self.labels(node),
            surge=self.value(node, "surge", partial(as_list, "surge", KINDS), ()),
        )

    def labels(self, node: CommentedMap) -> MappingProxyType[str, str]:
        if node.get("labels") is None:
            return MappingProxyType({})
        labels = self.mapping(node["labels"], value_pos(node, "labels"), "'labels'")
        for name, value in labels.items():
            if isinstance(value, CommentedMap | CommentedSeq) or value is None:
                hint = "labels: {desk: asia}"
                self.fail(f"label {name!r} must have one value", value_pos(labels, name), hint)
        return MappingProxyType({str(k): str(v) for k, v in labels.items()})
