"""The proxy a feed's requests go through, as the environment names it.

`HTTP_PROXY`, `HTTPS_PROXY` and `ALL_PROXY` (either case, read by the standard library's
`getproxies_environment`) name the proxy by scheme; `NO_PROXY` lists the hosts reached
directly. The variables are read when a connection opens, so a restarted service sees an
edited environment; the fetcher then keeps that connection for its host.
"""

from __future__ import annotations

from urllib.request import getproxies_environment

__all__ = ["exempt", "proxy_for"]


def proxy_for(scheme: str, host: str) -> str | None:
    """The proxy URL for requests to `host` over `scheme`, or None to connect directly."""
    proxies = getproxies_environment()
    proxy = proxies.get(scheme) or proxies.get("all")
    if proxy is None or exempt(host, proxies.get("no", "")):
        return None
    return proxy


def exempt(host: str, no_proxy: str) -> bool:
    """Whether NO_PROXY names the host: `*` for every host, else a comma-separated list of
    names (each also covering its subdomains, a leading dot or `*.` optional) and addresses."""
    host = host.lower().strip("[]")
    for entry in no_proxy.lower().split(","):
        name = entry.strip().removeprefix("*").lstrip(".").strip("[]")
        if entry.strip() == "*" or (name and (host == name or host.endswith("." + name))):
            return True
    return False
