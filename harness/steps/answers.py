"""How an action reads the exporter's answer: a status and a JSON object, or the exporter's
failure described for the check that reads it (never a harness error)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    pass

def answer(exporter_call: Any) -> tuple[int | None, dict[str, Any]]:
    """An exporter endpoint's status and JSON body. No answer, a 5xx or a body that is not a JSON
    object is the exporter's failure, described in the body for the check that reads it; never a
    harness error."""
    try:
        reply = exporter_call()
    except httpx.TimeoutException:
        return None, {"state": "no answer", "error": "timed out"}
    except httpx.HTTPError as exc:
        return None, {"state": "no answer", "error": f"{exc.__class__.__name__}: {exc}"}
    try:
        body = reply.json()
    except ValueError:
        return reply.status_code, {"state": f"answered {reply.status_code} with a body that is not JSON",
                                   "error": reply.text[:200]}
    if not isinstance(body, dict):
        return reply.status_code, {"state": f"answered {reply.status_code} with JSON that is not an object",
                                   "error": str(body)[:200]}
    return reply.status_code, body
