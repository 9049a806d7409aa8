"""Who may talk to the server: Host allow-list, cross-origin (CORS) policy, JSON content type.

A local model server is reachable by every web page the user opens: a page can
POST `text/plain` to `http://127.0.0.1:11434` without a CORS preflight, and a
DNS-rebinding page (`evil.example` resolving to 127.0.0.1) can even read the
answers (Ollama's CVE-2024-28224). Three checks close that, all pure functions
of the request headers (no I/O, tested without a socket):

- `OriginPolicy.host_allowed`: the `Host` header must name the address the server
  is bound to, a localhost name (`localhost`, `*.localhost`, 127.0.0.1, ::1), or a
  name given with `--allowed-hosts` (`*` allows any). Bound to a wildcard address
  (0.0.0.0, ::), any IP literal is accepted too: the server cannot list its own
  addresses, and an IP literal cannot be rebound. A rebinding page always sends its
  own host name, so it is refused (403).
- `OriginPolicy.origin_allowed`: a request with an `Origin` header (browsers send it
  on every cross-origin request and on same-origin POSTs) must come from the
  server's own origin or one given with `--cors` (`*` allows any). Preflights
  (`OPTIONS` with `Access-Control-Request-Method`) get 204 with the CORS headers
  for an allowed origin, 403 otherwise. Clients that are not browsers send no
  `Origin` and are not affected.
- `is_json_content_type`: JSON routes require `Content-Type: application/json`
  (415 otherwise), the one type a page cannot send cross-origin without a preflight.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Iterable, Mapping
from urllib.parse import urlsplit

__all__ = ["OriginPolicy", "split_host", "is_json_content_type", "LOCAL_NAMES"]

#: Host names that always mean this machine
LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "localhost.localdomain"})
_WILDCARDS = frozenset({"", "0.0.0.0", "::"})
_ALLOW_HEADERS = "Authorization, Content-Type, x-api-key, anthropic-version, anthropic-beta"
_ALLOW_METHODS = "GET, POST, HEAD, OPTIONS"


def split_host(value: str) -> tuple[str, str]:
    """(host name lowercased without brackets, port or "") of a Host header or an origin's netloc."""
    value = value.strip().lower()
    if value.startswith("["):  # [::1]:8080
        end = value.find("]")
        if end < 0:
            return value, ""
        host, rest = value[1:end], value[end + 1:]
        return host, rest[1:] if rest.startswith(":") else ""
    if value.count(":") == 1:
        host, port = value.split(":")
        return host, port
    return value, ""


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _is_local(host: str) -> bool:
    if host in LOCAL_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback_bind(bind_host: str) -> bool:
    """True when a server bound to `bind_host` is reachable from this machine only."""
    return bind_host.lower() not in _WILDCARDS and _is_local(bind_host.strip("[]").lower())


def is_json_content_type(value: str | None) -> bool:
    """`application/json` (any parameters, e.g. `; charset=utf-8`), or a `+json` type."""
    if not value:
        return False
    mime = value.split(";", 1)[0].strip().lower()
    return mime == "application/json" or (mime.startswith("application/") and mime.endswith("+json"))


@dataclass(frozen=True)
class OriginPolicy:
    """The Host and Origin rules for a server bound to `bind_host` (see the module docstring).

    `allowed_hosts`: extra Host names (`--allowed-hosts`; "*" = any, ".example.com" = a domain
    and its subdomains). `cors_origins`: origins browsers may call from (`--cors`; "*" = any).
    """

    bind_host: str = "127.0.0.1"
    allowed_hosts: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()

    @classmethod
    def build(cls, bind_host: str, allowed_hosts: Iterable[str] = (), cors_origins: Iterable[str] = ()) -> OriginPolicy:
        return cls(bind_host, tuple(h.strip().lower() for h in allowed_hosts if h.strip()),
                   tuple(o.strip().rstrip("/").lower() for o in cors_origins if o.strip()))

    def host_allowed(self, host_header: str | None) -> bool:
        """May a request with this `Host` header be served? (HTTP/1.0 clients may send none.)"""
        if not host_header:
            return True
        host, _ = split_host(host_header)
        if "*" in self.allowed_hosts or _is_local(host):
            return True
        bind = self.bind_host.strip("[]").lower()
        if host == bind or (bind in _WILDCARDS and _is_ip(host)):
            return True
        return any(host == name or (name.startswith(".") and (host.endswith(name) or host == name[1:]))
                   for name in self.allowed_hosts)

    def origin_allowed(self, origin: str, host_header: str | None) -> bool:
        """May a browser page at `origin` call us? Same origin always; others only with `--cors`."""
        origin = origin.strip().rstrip("/").lower()
        if "*" in self.cors_origins or origin in self.cors_origins:
            return True
        if origin == "null" or not host_header:
            return False
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return False
        return split_host(parts.netloc) == split_host(host_header)

    def cors_headers(self, origin: str) -> dict[str, str]:
        """Headers that let an allowed cross-origin page read the answer."""
        headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        if "*" not in self.cors_origins:
            headers["Access-Control-Allow-Credentials"] = "true"
        return headers

    def preflight_headers(self, origin: str, request_headers: Mapping[str, str]) -> dict[str, str]:
        """The answer to an allowed preflight: methods, the headers asked for, cache for 10 minutes."""
        asked = request_headers.get("Access-Control-Request-Headers", "")
        return {**self.cors_headers(origin), "Access-Control-Allow-Methods": _ALLOW_METHODS,
                "Access-Control-Allow-Headers": asked or _ALLOW_HEADERS, "Access-Control-Max-Age": "600"}


__all__ += ["is_loopback_bind"]
