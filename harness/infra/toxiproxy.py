"""Our facade over toxiproxy-python, so the rest of Faultline never meets its quirks.

The quirks it hides: the library keeps the server address in class attributes shared by the
whole process, sends requests without a timeout, lets a 5xx answer pass as success, and
enables proxies with the pre-2.x POST form. We pin the address per call under a lock, read
every toxic back after adding it (evidence that it took effect), and call the HTTP API
directly for what the library lacks: reset, enable/disable with PATCH, and version.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import toxiproxy.exceptions as tp_errors
from toxiproxy.api import APIConsumer
from toxiproxy.proxy import Proxy as LibProxy
from toxiproxy.server import Toxiproxy as _LibToxiproxy

from harness.errors import ToxiproxyError

# Every toxic Toxiproxy 2.x has, with the attributes each one takes.
TOXIC_ATTRIBUTES: dict[str, frozenset[str]] = {
    "latency": frozenset({"latency", "jitter"}),
    "bandwidth": frozenset({"rate"}),
    "slow_close": frozenset({"delay"}),
    "timeout": frozenset({"timeout"}),
    "reset_peer": frozenset({"timeout"}),
    "slicer": frozenset({"average_size", "size_variation", "delay"}),
    "limit_data": frozenset({"bytes"}),
}
STREAMS = ("upstream", "downstream")

_library_lock = threading.Lock()


@dataclass(frozen=True)
class Toxic:
    """A toxic as the server reports it."""

    proxy: str
    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, Any]


def validate_toxic(type_: str, stream: str, toxicity: float, attributes: dict[str, Any]) -> None:
    """Reject a toxic the server would refuse, with a message that says what is allowed."""
    if type_ not in TOXIC_ATTRIBUTES:
        raise ToxiproxyError(f"unknown toxic type {type_!r}; known: {', '.join(sorted(TOXIC_ATTRIBUTES))}")
    if stream not in STREAMS:
        raise ToxiproxyError(f"toxic {type_}: stream must be one of {STREAMS}, not {stream!r}")
    if not 0.0 <= toxicity <= 1.0:
        raise ToxiproxyError(f"toxic {type_}: toxicity must be within 0..1, not {toxicity}")
    unknown = set(attributes) - TOXIC_ATTRIBUTES[type_]
    if unknown:
        raise ToxiproxyError(f"toxic {type_}: unknown attributes {sorted(unknown)}; "
                             f"it takes {sorted(TOXIC_ATTRIBUTES[type_])}")
    negative = {k: v for k, v in attributes.items() if not isinstance(v, int) or v < 0}
    if negative:
        raise ToxiproxyError(f"toxic {type_}: attributes must be non-negative integers, got {negative}")


class ToxiproxyClient:
    """One Toxiproxy server's API."""

    def __init__(self, host: str, port: int, timeout: float = 5.0) -> None:
        self.host = host
        self.port = port
        self._http = httpx.Client(base_url=f"http://{host}:{port}", timeout=timeout)
        self._lib = _LibToxiproxy()

    @contextmanager
    def _library(self, what: str) -> Iterator[None]:
        """Point the library at this server for one call and translate its errors."""
        with _library_lock:
            APIConsumer.host, APIConsumer.port = self.host, self.port
            try:
                yield
            except tp_errors.ProxyExists as exc:
                raise ToxiproxyError(f"toxiproxy: {what}: already exists ({exc})") from exc
            except tp_errors.NotFound as exc:
                raise ToxiproxyError(f"toxiproxy: {what}: not found ({exc})") from exc
            except tp_errors.InvalidToxic as exc:
                raise ToxiproxyError(f"toxiproxy: {what}: refused ({exc})") from exc

    def _call(self, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ToxiproxyError(f"toxiproxy at {self.host}:{self.port}: {what}: {exc}") from exc
        if response.status_code >= 300:
            raise ToxiproxyError(f"toxiproxy: {what}: HTTP {response.status_code} {response.text.strip()}")
        return response

    def version(self) -> str:
        return self._call("GET", "/version", "version").text.strip()

    def create_proxy(self, name: str, listen: str, upstream: str) -> ProxyHandle:
        with self._library(f"create proxy {name}"):
            self._lib.create(upstream=upstream, name=name, listen=listen, enabled=True)
        return self.proxy(name)

    def delete_proxy(self, name: str) -> None:
        self._call("DELETE", f"/proxies/{name}", f"delete proxy {name}")

    def proxies(self) -> dict[str, dict[str, Any]]:
        return self._call("GET", "/proxies", "list proxies").json()

    def proxy(self, name: str) -> ProxyHandle:
        info = self._call("GET", f"/proxies/{name}", f"proxy {name}").json()
        return ProxyHandle(self, info["name"], info["listen"], info["upstream"])

    def reset(self) -> None:
        """Remove every toxic and enable every proxy (one request, fast between tests)."""
        self._call("POST", "/reset", "reset")

    def close(self) -> None:
        self._http.close()


class ProxyHandle:
    """One proxy: toxics, and links down."""

    def __init__(self, client: ToxiproxyClient, name: str, listen: str, upstream: str) -> None:
        self.client = client
        self.name = name
        self.listen = listen
        self.upstream = upstream

    def __repr__(self) -> str:
        return f"ProxyHandle({self.name!r}, listen={self.listen!r}, upstream={self.upstream!r})"

    def toxics(self) -> list[Toxic]:
        raw = self.client._call("GET", f"/proxies/{self.name}/toxics", f"toxics of {self.name}").json()
        return [Toxic(self.name, t["name"], t["type"], t["stream"], float(t["toxicity"]),
                      dict(t.get("attributes") or {})) for t in raw]

    def add_toxic(self, type_: str, *, stream: str = "downstream", toxicity: float = 1.0,
                  name: str | None = None, **attributes: int) -> Toxic:
        """Add a toxic and return it as read back from the server."""
        validate_toxic(type_, stream, toxicity, attributes)
        name = name or f"{type_}_{stream}"
        lib_proxy = _lib_proxy(self)
        with self.client._library(f"add {type_} toxic to {self.name}"):
            lib_proxy.add_toxic(type=type_, stream=stream, toxicity=toxicity, name=name,
                                attributes=attributes)
        for toxic in self.toxics():
            if toxic.name == name:
                return toxic
        raise ToxiproxyError(f"toxiproxy: toxic {name} on {self.name} was accepted but is not listed")

    def remove_toxic(self, name: str) -> None:
        lib_proxy = _lib_proxy(self)
        with self.client._library(f"remove toxic {name} from {self.name}"):
            lib_proxy.destroy_toxic(name)
        if any(t.name == name for t in self.toxics()):
            raise ToxiproxyError(f"toxiproxy: toxic {name} on {self.name} is still listed after removal")

    @contextmanager
    def toxic(self, type_: str, **kwargs: Any) -> Iterator[Toxic]:
        added = self.add_toxic(type_, **kwargs)
        try:
            yield added
        finally:
            self.remove_toxic(added.name)

    def set_enabled(self, enabled: bool) -> None:
        # PATCH is the current API; the library still POSTs, which newer servers deprecate.
        info = self.client._call("PATCH", f"/proxies/{self.name}", f"{'enable' if enabled else 'disable'} {self.name}",
                                 json={"enabled": enabled}).json()
        if bool(info.get("enabled")) is not enabled:
            raise ToxiproxyError(f"toxiproxy: {self.name} reports enabled={info.get('enabled')} after set to {enabled}")

    def set_upstream(self, upstream: str) -> None:
        """Point the proxy at a server's new address (a failover, a broker back on another port)."""
        info = self.client._call("PATCH", f"/proxies/{self.name}", f"re-point {self.name} to {upstream}",
                                 json={"upstream": upstream}).json()
        if info.get("upstream") != upstream:
            raise ToxiproxyError(f"toxiproxy: {self.name} reports upstream {info.get('upstream')} after set to "
                                 f"{upstream}")
        self.upstream = upstream

    def disable(self) -> None:
        self.set_enabled(False)

    def enable(self) -> None:
        self.set_enabled(True)

    @property
    def enabled(self) -> bool:
        return bool(self.client._call("GET", f"/proxies/{self.name}", f"proxy {self.name}").json()["enabled"])

    @contextmanager
    def down(self) -> Iterator[ProxyHandle]:
        """The link is cut (existing connections closed, new ones refused) inside the block."""
        self.disable()
        try:
            yield self
        finally:
            self.enable()


def _lib_proxy(handle: ProxyHandle) -> LibProxy:
    return LibProxy(name=handle.name, upstream=handle.upstream, enabled=True, listen=handle.listen)
