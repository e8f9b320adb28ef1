"""Where a webhook may go: never to this machine or its private networks (SSRF).

A URL is checked when a job names it and again, against a fresh DNS answer,
right before each delivery: a name that resolved to a public address at
submit time and to 127.0.0.1 later (DNS rebinding) is refused then. The
delivery connects to the very address that was checked. Operators allow
internal receivers by name, address or CIDR in WEBHOOK_ALLOWED_HOSTS.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from inference.errors import DjinnError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class WebhookUrlRefused(DjinnError):
    status = 422
    code = "webhook_url_not_allowed"


@dataclass(frozen=True)
class Target:
    """A checked destination: connect to `address`, but speak to `host` (Host header, TLS name)."""

    scheme: str
    host: str
    port: int
    address: IPAddress
    path: str

    @property
    def connect_url(self) -> str:
        literal = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return f"{self.scheme}://{literal}:{self.port}{self.path}"

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == default else f"{name}:{self.port}"


def _allowed_entries() -> tuple[set[str], list[ipaddress.IPv4Network | ipaddress.IPv6Network]]:
    names: set[str] = set()
    networks = []
    for entry in settings.WEBHOOK_ALLOWED_HOSTS:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            names.add(entry.lower().rstrip("."))
    return names, networks


def _is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise WebhookUrlRefused(
            f"The webhook host {host!r} does not resolve.", code="webhook_url_unresolvable", param="webhook.url"
        ) from None
    return [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]


def webhook_target(url: str) -> Target:
    """Check `url` and pick the address to deliver to, or raise WebhookUrlRefused."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookUrlRefused("A webhook URL must be an http:// or https:// URL.", param="webhook.url")
    if parts.username or parts.password:
        raise WebhookUrlRefused("A webhook URL must not carry credentials.", param="webhook.url")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise WebhookUrlRefused("The webhook URL's port is not valid.", param="webhook.url") from None
    host = parts.hostname.lower().rstrip(".")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    names, networks = _allowed_entries()
    addresses = _resolve(host, port)
    if not addresses:
        raise WebhookUrlRefused(f"The webhook host {host!r} does not resolve.", code="webhook_url_unresolvable")
    if host not in names:
        for address in addresses:
            if not _is_public(address) and not any(address in network for network in networks):
                raise WebhookUrlRefused(
                    f"The webhook URL resolves to {address}, a private, loopback or link-local address.",
                    param="webhook.url",
                )
    return Target(scheme=parts.scheme, host=host, port=port, address=addresses[0], path=path)
