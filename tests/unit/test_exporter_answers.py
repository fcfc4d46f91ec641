"""The right party: an exporter endpoint that answers 5xx, times out or sends a body that is not a
JSON object is the exporter's failure (a check fails), never a harness error; a bad export name
in a scenario is bad input, refused before anything starts."""

from __future__ import annotations

import httpx
import pytest

from harness.scenario import Export, ScenarioError
from harness.steps.answers import answer


def call(handler):  # noqa: ANN001, ANN201
    client = httpx.Client(transport=httpx.MockTransport(handler), base_url="http://exporter")
    return lambda: client.post("/pause")


def test_a_json_object_is_passed_through_with_its_status() -> None:
    assert answer(call(lambda _r: httpx.Response(200, json={"state": "paused"}))) == (200, {"state": "paused"})


@pytest.mark.parametrize(("response", "state"), [
    (httpx.Response(500, text="Internal Server Error"), "answered 500 with a body that is not JSON"),
    (httpx.Response(200, json=[1, 2]), "answered 200 with JSON that is not an object"),
])
def test_bodies_that_are_not_json_objects_are_described_for_the_check(response: httpx.Response,
                                                                      state: str) -> None:
    status, body = answer(call(lambda _r: response))
    assert status == response.status_code and body["state"] == state


def test_no_answer_is_the_exporters_failure_not_an_exception() -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    assert answer(call(timeout)) == (None, {"state": "no answer", "error": "timed out"})
    status, body = answer(call(refused))
    assert status is None and "ConnectError" in body["error"]


@pytest.mark.parametrize("name", ["../../x", "a/b", "", ".hidden"])
def test_an_export_name_a_server_would_refuse_is_bad_input(name: str) -> None:
    with pytest.raises((ValueError, ScenarioError)):
        Export(name)
