"""Digests: `rules/channels.yaml` (receivers and routes, crons), collecting a route's pending
matches as one entry per stored story (`storyfirst`: a story goes to a route once as new, then
as an update when it grows), arranging and rendering them to bytes, freezing them in the outbox
and handing them to `deliver`. It touches the database only through `store` and sends only
through `deliver`.

Entry points: `load_channels`, `collect` (what a route's digest takes), `freeze_routes` /
`freeze_route`, `send_due` and `send_now` (dispatch), `arrange`, `render_email` /
`render_webhook` (which clean feed text first: `render.clean`). Surges: `surges.detect` and
`surges.freeze_surges` (one alert per surge and route, `render.surge`), thresholds read by
`surgecheck`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from monitor.lazy import exports

if TYPE_CHECKING:
    from monitor.digest.arrange import arrange
    from monitor.digest.channels import Channels, load_channels
    from monitor.digest.dispatch import freeze_route, send_due

__all__ = ["Channels", "arrange", "freeze_route", "load_channels", "send_due"]
__getattr__ = exports(
    __name__,
    {
        "load_channels": "channels",
        "Channels": "channels",
        "freeze_route": "dispatch",
        "send_due": "dispatch",
        "arrange": "arrange",
    },
)
