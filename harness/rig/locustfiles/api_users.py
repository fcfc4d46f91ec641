"""Locust users of the exporter's HTTP API: submit a small export job, poll it until it ends.

A refusal with a reason (429 quota, 503 disk guard) is a correct answer under load; anything
else unexpected is a failure.
"""

from __future__ import annotations

import itertools
import os
import tomllib

from locust import FastHttpUser, constant, task

ENV = os.environ
_users = itertools.count()
LOAD_USERS = 64  # harness.model.api_tokens.LOAD_USERS: not imported, this file runs inside Locust


def _tokens() -> dict[str, str]:
    path = ENV.get("FAULTLINE_LOAD_TOKENS_FILE", "")
    if not path:
        return {}
    with open(path, "rb") as handle:
        return dict(tomllib.load(handle)["tokens"])


TOKENS = _tokens()


class ExportApiUser(FastHttpUser):
    wait_time = constant(float(ENV.get("FAULTLINE_LOAD_WAIT_S", "0.05")))

    def on_start(self) -> None:
        self.number = next(_users)
        self.submitted = 0
        self.job: str | None = None
        self.path = ENV.get("FAULTLINE_LOAD_EXPORTS_PATH", "/exports")
        self.rows = int(ENV.get("FAULTLINE_LOAD_ROWS", "10"))
        token = TOKENS.get(f"load-{self.number % LOAD_USERS}")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    @task
    def submit_or_poll(self) -> None:
        if self.job is None:
            self.submit()
        else:
            self.poll()

    def submit(self) -> None:
        name = f"{ENV['FAULTLINE_LOAD_PREFIX']}-{os.getpid()}-{self.number}-{self.submitted}.jsonl"
        self.submitted += 1
        body = {"format": "jsonl", "filter": {"min_id": 1, "max_id": self.rows},
                "destination": {"kind": "file", "name": name}}
        with self.client.post(self.path, json=body, name="POST /exports", catch_response=True,
                              headers=self.headers) as reply:
            if reply.status_code == 202:
                self.job = reply.json()["id"]
                reply.success()
            elif reply.status_code in (429, 503) and "detail" in (reply.text or ""):
                reply.success()  # a refusal with a reason: correct behaviour under load
            else:
                reply.failure(f"{reply.status_code}: {(reply.text or '')[:200]}")

    def poll(self) -> None:
        with self.client.get(f"{self.path}/{self.job}", name="GET /exports/{id}", catch_response=True,
                             headers=self.headers) as reply:
            if reply.status_code != 200:
                reply.failure(f"{reply.status_code}: {(reply.text or '')[:200]}")
                self.job = None
                return
            job = reply.json()
            if job["state"] in ("completed", "failed"):
                self.job = None
            if job["state"] == "failed":
                reply.failure(f"export job {job['id']} failed: {job.get('error')}")
            else:
                reply.success()
