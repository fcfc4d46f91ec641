"""The exporter's job API is safe to expose: bearer tokens per user, quotas and files per
authenticated user, no silent overwrite, Kafka destinations on an allow-list, bounded bodies and
bounded memory of finished jobs (issue 13: each of these was broken on a fresh exporter)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from harness.infra.waiting import wait_for
from harness.judge.sinks import read_lines, read_topic
from harness.rig.exporter_process import ExporterProcess, RunContext
from harness.rig.workload import SourceWriter

Start = Callable[..., ExporterProcess]
FILE = {"kind": "file", "name": "same.jsonl"}


def post(exporter: ExporterProcess, user: str, body: dict) -> httpx.Response:
    return exporter.post("/exports", json=body, as_user=user, timeout=30)


def finished(exporter: ExporterProcess, user: str, job_id: str) -> dict:
    return wait_for(lambda: (j := exporter.get(f"/exports/{job_id}", as_user=user).json()).get("state")
                    in ("completed", "failed") and j, timeout=60, what=f"export job {job_id}")


def test_no_token_or_a_wrong_one_is_401_and_read_only_endpoints_stay_open(
        run_ctx: RunContext, start_exporter: Start) -> None:
    exporter = start_exporter()
    anonymous = httpx.Client(base_url=f"http://127.0.0.1:{run_ctx.http_port}", timeout=10)
    wrong = {"Authorization": "Bearer " + "x" * 32}
    for method, path in (("POST", "/exports"), ("GET", "/exports"), ("POST", "/pause"), ("POST", "/resume")):
        for headers in ({}, wrong):
            reply = anonymous.request(method, path, headers=headers, json={"destination": FILE})
            assert reply.status_code == 401, (method, path, reply.text)
            assert reply.headers["www-authenticate"] == "Bearer"
    for path in ("/healthz", "/metrics", "/status"):
        assert anonymous.get(path).status_code == 200
    assert exporter.get("/exports").status_code == 200  # the harness's own token


def test_quota_and_files_belong_to_the_authenticated_user(run_ctx: RunContext, writer: SourceWriter,
                                                          start_exporter: Start) -> None:
    written = writer.insert([(f"k{i}", b"row %d" % i) for i in range(5)])
    exporter = start_exporter(EXPORTER_QUOTA_JOBS_PER_HOUR="2")
    # A body naming a user is refused: the quota's key is the token's user, nothing the client writes.
    assert post(exporter, "burst-0", {"user": "burst-0 ", "destination": FILE}).status_code == 422
    first = post(exporter, "burst-0", {"destination": FILE})
    other = post(exporter, "burst-1", {"destination": FILE})  # same name, another user: no clash
    assert first.status_code == other.status_code == 202, (first.text, other.text)
    a, b = finished(exporter, "burst-0", first.json()["id"]), finished(exporter, "burst-1", other.json()["id"])
    assert a["state"] == b["state"] == "completed"
    assert Path(a["path"]).parent.name == "burst-0" and Path(b["path"]).parent.name == "burst-1"
    assert {r.record_id for r in read_lines(Path(a["path"]))} == {w.record_id for w in written}
    before = Path(a["path"]).read_bytes()
    again = post(exporter, "burst-0", {"destination": FILE, "filter": {"max_id": 1}})
    assert again.status_code == 409 and "overwrite" in again.json()["detail"]
    assert Path(a["path"]).read_bytes() == before  # the existing file is untouched
    replaced = post(exporter, "burst-0", {"destination": FILE, "filter": {"max_id": written[0].record_id},
                                          "overwrite": True})
    assert replaced.status_code == 202
    assert finished(exporter, "burst-0", replaced.json()["id"])["state"] == "completed"
    assert len(read_lines(Path(a["path"]))) == 1
    third = post(exporter, "burst-0", {"destination": {"kind": "file", "name": "three.jsonl"}})
    assert third.status_code == 429 and "burst-0" in third.json()["detail"]
    # Another user's job is not visible to this one.
    assert exporter.get(f"/exports/{other.json()['id']}", as_user="burst-0").status_code == 404
    assert {j["id"] for j in exporter.get("/exports", as_user="burst-1").json()} == {other.json()["id"]}


def test_kafka_exports_only_to_allowed_topics(run_ctx: RunContext, writer: SourceWriter,
                                              start_exporter: Start) -> None:
    writer.insert([("k", b"one")])
    allowed = f"{run_ctx.namespace}-exports"
    exporter = start_exporter(EXPORTER_EXPORT_TOPICS=f"{allowed},{run_ctx.topic}")
    for topic in (run_ctx.topic, "anything-else"):  # the pipeline's own topic, even when listed
        refused = post(exporter, "burst-0", {"destination": {"kind": "kafka", "name": topic}})
        assert refused.status_code == 403 and allowed in refused.json()["detail"], refused.text
    ok = post(exporter, "burst-0", {"destination": {"kind": "kafka", "name": allowed}})
    assert ok.status_code == 202
    assert finished(exporter, "burst-0", ok.json()["id"])["state"] == "completed"
    assert len(list(read_topic(run_ctx.stack, allowed))) == 1


def test_oversized_bodies_are_413_and_finished_jobs_are_bounded_summaries(
        run_ctx: RunContext, writer: SourceWriter, start_exporter: Start) -> None:
    writer.insert([("k", b"one")])
    exporter = start_exporter(EXPORTER_JOBS_KEPT="2", EXPORTER_API_MAX_BODY_BYTES="4096")
    huge = post(exporter, "burst-0", {"destination": FILE, "filter": {"key_prefix": "x" * 100_000}})
    assert huge.status_code == 413 and "4096" in huge.json()["detail"]

    def chunks():  # noqa: ANN202 - a body with no declared length, cut off as it passes the bound
        yield b'{"destination": {"kind": "file", "name": "c.jsonl"}, "filter": {"key_prefix": "'
        for _ in range(100):
            yield b"y" * 1000
        yield b'"}}'

    chunked = exporter.http.post("/exports", content=chunks(), headers={**exporter.auth("faultline"),
                                                                      "content-type": "application/json"})
    assert chunked.status_code == 413
    ids = []
    for n in range(4):
        reply = post(exporter, "faultline", {"destination": {"kind": "file", "name": f"j{n}.jsonl"}})
        assert reply.status_code == 202, reply.text
        ids.append(reply.json()["id"])
        finished(exporter, "faultline", ids[-1])
    kept = exporter.get("/exports").json()
    assert [j["id"] for j in kept] == ids[2:]  # the two oldest forgotten
    assert all("spec" not in j and j["destination"].startswith("j") for j in kept)  # summaries, not specs
    assert exporter.get(f"/exports/{ids[0]}").status_code == 404
