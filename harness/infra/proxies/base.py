"""A protocol proxy: a TCP relay on a loopback port that decodes one server's protocol and answers
chosen requests itself (an error code, a cut reply), one request at a time, with every answer it
made up written to its journal.

Toxiproxy works on bytes and links; an exporter's error handling is about *which* error it got
for *which* request, so these proxies sit behind Toxiproxy on a link (Toxiproxy's upstream is
re-pointed at the proxy before the exporter starts, and back at the end) and the step kinds add
and remove rules. Each proxy runs an asyncio loop on its own thread in the harness's process: it
lives and dies with the run that started it (nothing to reap), and the harness reads its journal
directly. A rule fires by a ``Trigger``: the n-th matching request, then n times (or every time),
with a probability drawn from its own seeded generator, only while the step is in force.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from harness.errors import HarnessError

HOST = "127.0.0.1"
START_TIMEOUT_S = 5.0
JOURNAL_MAX = 10_000  # injections kept per proxy (a counter keeps the total)
READ_SIZE = 256 * 1024  # bytes read at once: a pipeline's requests are decoded from one read


class ProxyError(HarnessError):
    """A protocol proxy could not start, or was used wrongly."""


class ProtocolViolation(ValueError):
    """Bytes on a connection that are not the protocol: the connection is closed, as a server would."""


@dataclass
class Trigger:
    """When a rule fires among the requests it matches: from the ``nth`` on, ``times`` times (0:
    every one), each with ``probability`` from a generator seeded with ``seed`` (replayable)."""

    nth: int = 1
    times: int = 1
    probability: float = 1.0
    seed: int = 1
    matched: int = 0
    fired: int = 0
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def fires(self) -> bool:
        """Count one matching request and say whether the rule answers it."""
        self.matched += 1
        if self.matched < self.nth or (self.times and self.fired >= self.times):
            return False
        if self.probability < 1.0 and self._rng.random() >= self.probability:
            return False
        self.fired += 1
        return True


@dataclass(frozen=True)
class Injection:
    """One answer the proxy made up: when (the harness's monotonic clock), on which connection,
    to which request, and what it answered."""

    at: float
    connection: int
    request: str
    answer: str
    rule: int


class Inbound:
    """What has been read from one side and not yet taken, taken frame by frame without copying
    the rest each time (the consumed prefix is dropped once it is half the buffer)."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader, self.buf, self.pos = reader, bytearray(), 0

    async def more(self) -> None:
        chunk = await self.reader.read(READ_SIZE)
        if not chunk:
            raise asyncio.IncompleteReadError(b"", None)
        if self.pos > len(self.buf) // 2:
            del self.buf[:self.pos]
            self.pos = 0
        self.buf += chunk

    def take(self, end: int) -> bytes:
        data, self.pos = bytes(self.buf[self.pos:end]), end
        return data

    @property
    def empty(self) -> bool:
        return self.pos >= len(self.buf)

    async def frame(self, end_of: Callable[[bytearray, int], int | None]) -> bytes:
        """The next whole frame, as ``end_of`` delimits it (None: not all here yet)."""
        while (end := end_of(self.buf, self.pos)) is None:
            await self.more()
        return self.take(end)


class Rule(ABC):
    """What a step asks of a proxy: which requests it matches and what it answers."""

    trigger: Trigger

    @abstractmethod
    def describe(self) -> str: ...


class ProtocolProxy(ABC):
    """The relay and its rules; a subclass decodes its protocol in ``relay``."""

    protocol = "abstract"

    def __init__(self, upstream: tuple[str, int], clock: Callable[[], float] = time.monotonic) -> None:
        self.upstream = upstream
        self.clock = clock
        self.port = 0
        self.journal: list[Injection] = []
        self.injected = 0
        # Connections closed because their bytes could not be read as the protocol: the proxy
        # itself cut them (a decoder's bug, or a client that is not what it seemed), so every
        # step's record says so rather than the close passing for the server's.
        self.violations: list[str] = []
        self._rules: dict[int, Rule] = {}
        self._next_rule = 1
        self._connections = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- rules ------------------------------------------------------------------------------------
    def add_rule(self, rule: Rule) -> int:
        with self._lock:
            number, self._next_rule = self._next_rule, self._next_rule + 1
            self._rules[number] = rule
            return number

    def remove_rule(self, number: int) -> None:
        with self._lock:
            self._rules.pop(number, None)

    def rules(self) -> dict[int, Rule]:
        with self._lock:
            return dict(self._rules)

    def injections(self, rule: int | None = None) -> list[Injection]:
        with self._lock:
            return [i for i in self.journal if rule is None or i.rule == rule]

    def record(self, connection: int, request: str, answer: str, rule: int) -> None:
        with self._lock:
            self.injected += 1
            if len(self.journal) < JOURNAL_MAX:
                self.journal.append(Injection(self.clock(), connection, request, answer, rule))

    # -- life ---------------------------------------------------------------------------------------
    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def start(self) -> ProtocolProxy:
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(target=self._serve, args=(ready, failure), daemon=True,
                                        name=f"{self.protocol}-proxy")
        self._thread.start()
        if not ready.wait(START_TIMEOUT_S) or failure:
            self.close()
            cause = f": {failure[0]}" if failure else f" within {START_TIMEOUT_S}s"
            raise ProxyError(f"the {self.protocol} proxy did not start{cause}")
        return self

    def _serve(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._server = loop.run_until_complete(asyncio.start_server(self._accept, HOST, 0))
            self.port = self._server.sockets[0].getsockname()[1]
        except OSError as exc:
            failure.append(exc)
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._shutdown())
            loop.close()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def close(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=START_TIMEOUT_S)
            if thread.is_alive():
                raise ProxyError(f"the {self.protocol} proxy's thread did not stop within {START_TIMEOUT_S}s")

    # -- connections --------------------------------------------------------------------------------
    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        with self._lock:
            self._connections += 1
            number = self._connections
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.close()  # the server is down: the client sees the connection refused-like close
            self._tasks.discard(task)
            return
        try:
            await self.relay(number, client_reader, client_writer, server_reader, server_writer)
        except ProtocolViolation as exc:
            with self._lock:
                if len(self.violations) < JOURNAL_MAX:
                    self.violations.append(f"connection {number} at {self.clock():.3f}: {exc}")
        except (OSError, asyncio.IncompleteReadError, ConnectionError):
            pass  # either side went away: both are closed below, as a server would
        except asyncio.CancelledError:
            pass  # the proxy is closing: the connection ends with it (a cancelled handler task would
            # make asyncio's stream callback raise when it asks the task for its exception)
        finally:
            for writer in (client_writer, server_writer):
                writer.close()
                # Closing the proxy cancels this wait too: the connection ends with it either way.
                with contextlib.suppress(OSError, ConnectionError, asyncio.CancelledError):
                    await writer.wait_closed()
            self._tasks.discard(task)

    @abstractmethod
    async def relay(self, connection: int, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter,
                    server_reader: asyncio.StreamReader, server_writer: asyncio.StreamWriter) -> None:
        """Relay one client connection until either side closes."""

    @staticmethod
    def answering(answers: Coroutine[Any, Any, None], client_writer: asyncio.StreamWriter) -> asyncio.Future[None]:
        """The task that answers the client in request order; when it ends (a cut, the server
        gone) the client's side is closed, which ends the relay's read with EOF."""
        task = asyncio.ensure_future(answers)
        task.add_done_callback(lambda _task: client_writer.close())
        return task

    @staticmethod
    async def pump(requests: Inbound, route_all: Callable[[], list[bytes]], server_writer: asyncio.StreamWriter,
                   answering: asyncio.Future[None]) -> None:
        """Read the client until the answering task ends: after each read, every whole request is
        routed (``route_all`` returns what goes to the server) and a pipeline goes on in one write."""
        try:
            while not answering.done():
                await requests.more()
                sent = route_all()
                if sent:
                    server_writer.write(b"".join(sent))
                    await server_writer.drain()
        finally:
            if not answering.done():
                answering.cancel()
            await asyncio.gather(answering, return_exceptions=True)
