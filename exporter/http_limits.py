"""Limits on what a client may make the HTTP server hold before any route (or token check) runs.

uvicorn's httptools protocol keeps whatever a request head holds and waits as long as a client
takes to send it: eight connections with 47 MB headers took the exporter from 85 to 538 MB, and
800 requests sent one byte a second stayed open. This protocol answers 431 to a head over
``MAX_HEAD_BYTES`` or with more than ``MAX_HEADERS`` fields, and 408 to a request (head and body)
not received within ``read_timeout_s`` of its first byte (``EXPORTER_API_READ_TIMEOUT_S``, 10 s),
or a connection that sends nothing at all for as long; uvicorn's ``limit_concurrency`` bounds the
connections themselves.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 16 * 1024  # request line and headers (nginx's default large buffer is 8 KiB)
MAX_HEADERS = 100
MAX_CONNECTIONS = 512  # uvicorn answers 503 past this many connections and tasks


def _answer(status: bytes, message: str) -> bytes:
    body = message.encode()
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: "
            + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body)


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    read_timeout_s: float = 10.0  # set per server by ``limited(timeout)``

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_size = 0  # the request line and the header fields read so far
        self._unfinished_head = 0  # bytes received while a head was not yet complete
        self._reading_head = True
        self._refusal = ""  # why the parser was stopped: answered 431 instead of 400
        self._read_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # a connection that never sends a byte is timed out too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._reading_head:
            self._unfinished_head += len(data)
        super().data_received(data)
        # A head still unfinished after this many bytes is over the bound whatever comes next (the
        # parser holds a field's value until it ends: 47 MB of one header were held whole). A body
        # in the same read as its head is not counted: the head finished inside it.
        if self._reading_head and self._unfinished_head > MAX_HEAD_BYTES:
            self._refuse(b"431 Request Header Fields Too Large", f"request head over {MAX_HEAD_BYTES} bytes")

    def send_400_response(self, msg: str) -> None:
        if self._refusal:  # the parser was stopped below: answered as what it is
            self._refuse(b"431 Request Header Fields Too Large", self._refusal)
            return
        super().send_400_response(msg)

    # -- parser callbacks ---------------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_head, self._head_size = True, 0
        self._arm()

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4
        if len(self.headers) >= MAX_HEADERS:
            self._refusal = f"more than {MAX_HEADERS} header fields"
        elif self._head_size > MAX_HEAD_BYTES:
            self._refusal = f"request head over {MAX_HEAD_BYTES} bytes"
        if self._refusal:
            raise ValueError(self._refusal)  # the parser stops; send_400_response answers 431
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading_head, self._unfinished_head = False, 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    # -- the read timer -----------------------------------------------------------------------
    def _arm(self) -> None:
        self._disarm()
        self._read_timer = self.loop.call_later(self.read_timeout_s, self._read_timed_out)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _read_timed_out(self) -> None:
        self._read_timer = None
        if self.cycle is not None and self.cycle.response_started:
            return  # the request is in and being answered (a pause's grace): not the client's slowness
        self._refuse(b"408 Request Timeout", f"request not received within {self.read_timeout_s:g}s")

    def _refuse(self, status: bytes, message: str) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(_answer(status, message))
            self.transport.close()


def limited(read_timeout_s: float) -> type[LimitedHttpToolsProtocol]:
    """The protocol class for one server (uvicorn makes an instance per connection)."""
    return type("LimitedHttpTools", (LimitedHttpToolsProtocol,), {"read_timeout_s": read_timeout_s})
