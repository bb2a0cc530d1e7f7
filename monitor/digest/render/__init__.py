"""Digests to bytes: `render_email` (RFC 5322 message) and `render_webhook` (JSON or Slack).

Pure functions of a `Digest` and the rendering time: the same values give the same bytes, so a
frozen digest can be rebuilt and compared, and a retry resends exactly what was stored.
"""

from monitor.digest.render.email import render_email
from monitor.digest.render.webhook import render_webhook

__all__ = ["render_email", "render_webhook"]
