"""The console's deliveries page: digests waiting, retrying and dead, and what to do about them.

It reads the outbox as `monitor status` does (`Outbox.counts`, `recent`, `get`,
`RouteHealth.troubled`). Its two actions are the CLI's without the sending:

- Retry (`POST /deliveries/{id}/retry`) requeues a dead or retrying digest
  (`Outbox.requeue`, as `monitor digest retry` does before it sends). The service's delivery
  job sends it, byte-identical, in its next round: within a tick, at once when the service
  handed the console a way to wake it (`WebConfig.wake_delivery`); without a service, on the
  next `monitor digest send`. The page never talks to a mail server itself: a request must
  not hang for a server's timeout, the sending lanes (one per receiver, leased) stay the only
  senders, and the SMTP login lives in the service's environment, not the console's.
- Enable (`POST /deliveries/receivers/{id}/enable`) is `monitor digest enable`.

Both answer with a redirect back to the page (POST, redirect, GET) naming what happened in
the query (`?notice=...`); the page words the notice itself, from the store's state, and
shows an id from the URL only when it is the id of a stored digest or a plain receiver id.

`GET /deliveries/{id}` shows one digest: its facts, the items it listed (linking to their
item pages and outlets) and the text that was (or will be) sent.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from monitor.digest.render.email import email_part
from monitor.store.outbox import FrozenDigest, Outbox
from monitor.store.routes import RouteHealth
from monitor.store.web_ops import digest_entries, disabled_receivers, surge_alerts
from monitor.web.render import page
from monitor.web.state import console

SHOWN = 100  # digests listed of each status: the newest dead, retrying and pending ones
DELIVERED_SHOWN = 10  # the last delivered ones, for context
RETRYABLE = ("dead", "retrying")
ORDER = ("pending", "retrying", "delivered", "dead")
PLAIN_ID = re.compile(r"[A-Za-z0-9_.:-]{1,200}")  # a receiver id as channels.yaml allows


def deliveries_page(request: Request) -> Response:
    store = console(request).store
    outbox = Outbox(store)
    # One list per status, so that many pending digests never push the dead ones out.
    groups = [(s, outbox.recent((s,), SHOWN)) for s in ("dead", "retrying", "pending")]
    delivered = outbox.recent(("delivered",), DELIVERED_SHOWN)
    counts = outbox.counts()
    listed = [d.id for _, digests in groups for d in digests] + [d.id for d in delivered]
    surges = surge_alerts(store, listed)
    return page(
        request,
        "deliveries.html",
        active="deliveries",
        counts={status: counts.get(status, 0) for status in ORDER},
        groups=groups,
        retryable=RETRYABLE,
        delivered=delivered,
        surges=surges,
        disabled=disabled_receivers(store),
        routes=RouteHealth(store).troubled(),
        notice=_notice(request, outbox),
        now=datetime.now(UTC),
    )


def _notice(request: Request, outbox: Outbox) -> tuple[str, str] | None:
    """(class, text) for what the last action did; worded here, from the store's state."""
    what = request.query_params.get("notice")
    digest_id = request.query_params.get("digest", "")
    receiver = request.query_params.get("receiver", "")
    if what in ("requeued", "not-requeued") and outbox.get(digest_id) is None:
        return None
    if what in ("enabled", "not-enabled") and not PLAIN_ID.fullmatch(receiver):
        return None
    if what == "requeued":
        return "ok", (
            f"Digest {digest_id} is queued again: the service sends it in its next round "
            "(or run `monitor digest send`)."
        )
    if what == "not-requeued":
        return "error", f"Digest {digest_id} was not queued again: {_why_not(outbox, digest_id)}."
    if what == "enabled":
        return "ok", f"Receiver {receiver} is enabled: its digests go out again."
    if what == "not-enabled":
        return "error", f"Receiver {receiver} was not disabled: nothing to enable."
    return None


def _why_not(outbox: Outbox, digest_id: str) -> str:
    frozen = outbox.get(digest_id)
    if frozen is None:
        return "there is no such digest"
    now = datetime.now(UTC)
    if frozen.leased_until is not None and frozen.leased_until > now:
        return "it is being sent right now"
    return f"it is {frozen.status}; only a dead or retrying digest is sent again"


def retry(request: Request) -> Response:
    digest_id = request.path_params["digest_id"]
    state = console(request)
    outbox = Outbox(state.store)
    if outbox.get(digest_id) is None:
        raise HTTPException(404, f"no digest {digest_id!r}: the deliveries page lists them")
    done = outbox.requeue(digest_id, datetime.now(UTC))
    if done and state.config.wake_delivery is not None:
        state.config.wake_delivery()  # inside `monitor run`: the delivery job sends it now
    notice, where = ("requeued" if done else "not-requeued"), quote(digest_id, safe="")
    return RedirectResponse(
        f"/deliveries?notice={notice}&digest={where}#digest-{where}", status_code=303
    )


def enable(request: Request) -> Response:
    receiver = request.path_params["receiver_id"]
    done = Outbox(console(request).store).enable_receiver(receiver)
    notice = "enabled" if done else "not-enabled"
    where = quote(receiver, safe="")
    return RedirectResponse(f"/deliveries?notice={notice}&receiver={where}", status_code=303)


def digest_view(request: Request) -> Response:
    digest_id = request.path_params["digest_id"]
    store = console(request).store
    frozen = Outbox(store).get(digest_id)
    if frozen is None:
        raise HTTPException(404, f"no digest {digest_id!r}: the deliveries page lists them")
    entries = digest_entries(store, digest_id)
    items = {s.id: s for s in store.get_items([e.item_id for e in entries])}
    return page(
        request,
        "deliveries_digest.html",
        active="deliveries",
        digest=frozen,
        entries=[(e, items.get(e.item_id)) for e in entries],
        surge=bool(surge_alerts(store, [digest_id])),
        text=_readable(frozen),
        retryable=frozen.status in RETRYABLE,
        now=datetime.now(UTC),
    )


def _readable(frozen: FrozenDigest) -> str:
    """What the receiver reads: an email's plain-text part, a webhook's JSON indented."""
    if frozen.kind == "email":
        return email_part(frozen.body, "plain") or ""
    try:
        return json.dumps(json.loads(frozen.body), ensure_ascii=False, indent=2)
    except ValueError:
        return frozen.body.decode("utf-8", "replace")


ROUTES: list[BaseRoute] = [
    Route("/deliveries", deliveries_page, methods=["GET"]),
    Route("/deliveries/{digest_id}", digest_view, methods=["GET"]),
    Route("/deliveries/{digest_id}/retry", retry, methods=["POST"]),
    Route("/deliveries/receivers/{receiver_id}/enable", enable, methods=["POST"]),
]
