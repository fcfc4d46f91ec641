"""Putting a protocol proxy on a server's link for a run (harness.infra.proxies), for the step
kinds that answer single requests: before the exporter starts, Toxiproxy's upstream for that
link is pointed at a proxy in the harness's process (so no connection of the exporter is cut by
the move), and at cleanup it is pointed back, unless something else re-pointed it meanwhile (a
server moved to new ports)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from harness.errors import HarnessError
from harness.infra.proxies.base import ProtocolProxy

if TYPE_CHECKING:
    from harness.steps.context import StepContext

ProxyFactory = Callable[[tuple[str, int], Callable[[], float]], ProtocolProxy]


def ensure_proxy(run: StepContext, server: str, make: ProxyFactory) -> ProtocolProxy:
    """The run's proxy on ``server``'s link, started and put on the link the first time."""
    if server in run.proxies:
        return run.proxies[server]
    link = run.stack.proxy(server)
    original = link.upstream
    host, _, port = original.rpartition(":")
    proxy = make((host, int(port)), run.now).start()

    def put_back() -> None:
        try:
            if run.stack.proxy(server).upstream == proxy.address:
                link.set_upstream(original)
        finally:
            proxy.close()

    run.closers.append(put_back)
    link.set_upstream(proxy.address)
    run.proxies[server] = proxy
    return proxy


def proxy_of(run: StepContext, server: str, step: str) -> ProtocolProxy:
    try:
        return run.proxies[server]
    except KeyError:
        raise HarnessError(f"scenario {run.scenario.name}: {step} has no {server} protocol proxy "
                           "(it is put on the link before the exporter starts, by the step's prepare)") from None
