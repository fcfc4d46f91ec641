"""Bad request bodies get a 422 naming the field, never a 500: a NaN in a body used to turn
FastAPI's 422 into a 500 (its answer echoed the NaN as JSON), and "5" or "yes" were coerced."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from exporter import config
from exporter.api import create_app
from exporter.auth import Tokens
from exporter.service import Service

TOKEN = "a" * 20
FILE = '"destination": {"kind": "file", "name": "x.jsonl"}'


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(f'[tokens]\nalice = "{TOKEN}"\n\n[rights]\nalice = ["pause"]\n')
    tokens.chmod(0o600)
    cfg = config.load(environ={"EXPORTER_POSTGRES_DSN": "postgresql://x@127.0.0.1:1/x",
                               "EXPORTER_REDIS_URL": "redis://127.0.0.1:1", "EXPORTER_KAFKA_BOOTSTRAP": "127.0.0.1:1",
                               "EXPORTER_API_TOKENS_FILE": str(tokens), "EXPORTER_EXPORT_DIR": str(tmp_path)})
    service = Service(cfg)
    try:
        yield TestClient(create_app(service, Tokens.load(str(tokens))))
    finally:
        service.jobs.close()


@pytest.mark.parametrize(("body", "field"), [
    (f'{{{FILE}, "filter": {{"min_id": NaN}}}}', "min_id"),
    (f'{{{FILE}, "filter": {{"min_id": Infinity}}}}', "min_id"),
    (f'{{{FILE}, "filter": {{"min_id": -5}}}}', "min_id"),
    (f'{{{FILE}, "filter": {{"min_id": "5"}}}}', "min_id"),
    (f'{{{FILE}, "overwrite": "yes"}}', "overwrite"),
    (f'{{{FILE}, "encoding": "klingon"}}', "encoding"),
    (f'{{{FILE}, "surprise": 1}}', "surprise"),
    ('{"destination": {"kind": "s3", "name": "x"}}', "kind"),
])
def test_bad_bodies_are_422_naming_the_field(client: TestClient, body: str, field: str) -> None:
    reply = client.post("/exports", content=body, headers={"Authorization": f"Bearer {TOKEN}",
                                                           "content-type": "application/json"})
    assert reply.status_code == 422, reply.text
    assert field in reply.json()["detail"][0]["loc"]


@pytest.mark.parametrize("grace", ["nan", "inf", "-1", "abc"])
def test_a_pause_grace_that_is_not_a_finite_positive_number_is_422(client: TestClient, grace: str) -> None:
    assert client.post(f"/pause?grace={grace}", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 422


@pytest.mark.parametrize("path", ["/pause?grce=5", "/pause?grace=1&grace_s=9", "/resume?force=1",
                                  "/pause?grace=restart&grace=5"])
def test_a_query_parameter_the_endpoint_does_not_take_is_422(client: TestClient, path: str) -> None:
    """Found by fuzzing the API from its schema: /pause?grce=5 paused with the default grace."""
    reply = client.post(path, headers={"Authorization": f"Bearer {TOKEN}"})
    assert reply.status_code == 422, reply.text
    assert reply.json()["detail"][0]["loc"][0] == "query"
