"""HTTP API: health, readiness, metrics, status, pause/resume, batch export jobs.

Health, readiness, metrics and status are open; pausing, resuming and export jobs need a bearer
token (exporter.auth), and every request body is bounded (413 past ``api_max_body_bytes``).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ConfigDict, Field, field_validator

from exporter import defects, metrics
from exporter.auth import Tokens
from exporter.encoding import export_encoding
from exporter.errors import TransientError
from exporter.jobs import DestinationExists, DestinationRefused, DiskGuardRefused, JobSpec, QuotaExceeded
from exporter.limits import BodyLimit
from exporter.pausing import NotYours
from exporter.service import Service

# Request bodies are strict: exact JSON types ("5" is not an id, "yes" not a boolean), finite
# numbers, bounded sizes, no unknown fields.
STRICT = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)
RecordId = Annotated[int, Field(ge=0, le=2**63 - 1)]


class Filter(BaseModel):
    model_config = STRICT

    min_id: RecordId | None = None
    max_id: RecordId | None = None
    # Text Postgres can hold: a NUL is refused here (psycopg would refuse it with a 500).
    key_prefix: Annotated[str, Field(max_length=1000, pattern=r"^[^\x00]*$")] | None = None


class Destination(BaseModel):
    model_config = STRICT

    kind: Literal["file", "kafka"]
    name: str = Field(description="file name inside the export directory, or a Kafka topic")

    @field_validator("name")
    @classmethod
    def plain_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}", value):
            raise ValueError("must be a plain name (letters, digits, . _ -), no path separators")
        return value


class ExportRequest(BaseModel):
    # No ``user``: the job belongs to the token's user. Unknown fields are refused, so a client
    # that still sends one learns it is not used.
    model_config = STRICT

    filter: Filter = Filter()
    format: Literal["csv", "jsonl"] = "jsonl"
    encoding: Annotated[str, Field(max_length=40)] = "utf-8"
    destination: Destination
    overwrite: bool = False  # replace an existing file of the same name (otherwise 409)

    @field_validator("encoding")
    @classmethod
    def known_encoding(cls, value: str) -> str:
        return export_encoding(value)


async def refused_input(_request: Any, exc: Exception) -> JSONResponse:
    """422 naming each field and why, with the offending input quoted as text: FastAPI's own
    answer echoes the input as JSON, and a NaN in a body then turned the 422 into a 500."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    detail = [{"loc": [str(x) for x in e.get("loc", ())], "msg": str(e.get("msg", "")),
               "type": str(e.get("type", "")), "input": repr(e.get("input"))[:100]} for e in errors]
    return JSONResponse({"detail": detail}, status_code=422)


def known_query_only(request: Request) -> None:
    """A query parameter the route does not take, or one given twice, is refused (422), not
    ignored: ``/pause?grce=5`` paused with the default grace while its caller believed it asked
    for 5 s (found by fuzzing the API from its schema)."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known = {param.alias for param in _query_params(dependant)}
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise RequestValidationError([{"loc": ("query", unknown[0]), "msg": "not a parameter of this endpoint",
                                       "type": "extra_forbidden", "input": request.query_params.get(unknown[0])}])
    repeated = sorted({key for key in request.query_params if len(request.query_params.getlist(key)) > 1})
    if repeated:  # ?grace=restart&grace=5 was read as 5, the rest dropped without a word
        raise RequestValidationError([{"loc": ("query", repeated[0]), "msg": "given more than once",
                                       "type": "value_error", "input": request.query_params.getlist(repeated[0])}])


def _query_params(dependant: Any) -> list[Any]:
    """The route's query parameters, its dependencies' included."""
    found = list(dependant.query_params)
    for sub in dependant.dependencies:
        found += _query_params(sub)
    return found


def bearer_user(tokens: Tokens):  # noqa: ANN201 - a FastAPI dependency
    scheme = HTTPBearer(auto_error=False)

    def user(credentials: HTTPAuthorizationCredentials | None = Depends(scheme)) -> str:
        found = tokens.user_for(credentials.credentials) if credentials is not None else None
        if found is None:
            raise HTTPException(401, "a valid bearer token is needed (Authorization: Bearer <token>)"
                                + ("" if tokens.by_user else "; this exporter has no api_tokens_file"),
                                headers={"WWW-Authenticate": "Bearer"})
        return found

    return user


def create_app(service: Service, tokens: Tokens | None = None) -> FastAPI:
    # No schema or docs pages unless asked for (api_docs): they map the API for anyone, unauthenticated.
    docs = service.config.api_docs
    app = FastAPI(title="exporter", lifespan=service.lifespan, openapi_url="/openapi.json" if docs else None,
                  docs_url="/docs" if docs else None, redoc_url=None, dependencies=[Depends(known_query_only)])
    app.add_middleware(BodyLimit, max_bytes=service.config.api_max_body_bytes)
    app.add_exception_handler(RequestValidationError, refused_input)
    token_file = tokens if tokens is not None else Tokens.load(service.config.api_tokens_file)
    authenticated = bearer_user(token_file)

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok", "defect": defects.active()}

    @app.get("/readyz")
    def readyz(response: Response) -> dict:
        checks = service.dependency_checks()
        ok = all(c["ok"] for c in checks.values())
        response.status_code = 200 if ok else 503
        return {"ready": ok, "checks": checks}

    @app.get("/metrics")
    def metrics_endpoint() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/status")
    def status() -> dict:
        return service.status()

    def may_pause(user: str = Depends(authenticated)) -> str:
        if not token_file.may(user, "pause"):
            raise HTTPException(403, f"user {user!r} may not pause the pipeline (the right 'pause' in the tokens "
                                "file's [rights])")
        return user

    @app.post("/pause")
    async def pause(grace: float = Query(default=None, gt=0, le=600), user: str = Depends(may_pause)) -> dict:
        grace_s = grace if grace is not None else service.config.pause_grace_s
        result = await run_in_threadpool(service.pauser.pause, grace_s, user)
        return result.to_dict()

    @app.get("/pause")
    def pause_status() -> dict:
        return service.pauser.status.to_dict()

    @app.post("/resume")
    def resume(user: str = Depends(may_pause)) -> dict:
        try:
            return service.pauser.resume(user, any_pause=token_file.may(user, "resume_any")).to_dict()
        except NotYours as exc:
            raise HTTPException(403, str(exc)) from exc

    @app.post("/exports", status_code=202)
    async def submit(request: ExportRequest, user: str = Depends(authenticated)) -> dict:
        if request.destination.kind == "file" and not service.config.export_dir:
            raise HTTPException(422, "file exports need export_dir (EXPORTER_EXPORT_DIR) to be configured")
        spec = JobSpec(user=user, format=request.format, encoding=request.encoding,
                       destination_kind=request.destination.kind, destination=request.destination.name,
                       min_id=request.filter.min_id, max_id=request.filter.max_id,
                       key_prefix=request.filter.key_prefix, overwrite=request.overwrite)
        try:
            job = await run_in_threadpool(service.jobs.submit, spec)
        except QuotaExceeded as exc:
            raise HTTPException(429, str(exc)) from exc
        except DestinationRefused as exc:
            raise HTTPException(403, str(exc)) from exc
        except DestinationExists as exc:
            raise HTTPException(409, str(exc)) from exc
        except DiskGuardRefused as exc:
            raise HTTPException(503, str(exc)) from exc
        except TransientError as exc:
            raise HTTPException(503, f"source unavailable: {exc}") from exc
        return job.to_dict()

    @app.get("/exports/{job_id}")
    def job_status(job_id: str, user: str = Depends(authenticated)) -> dict:
        job = service.jobs.lookup(job_id, user)
        if job is None:
            raise HTTPException(404, f"no export job {job_id!r} of {user!r}")
        return job

    @app.get("/exports")
    def jobs(user: str = Depends(authenticated)) -> list[dict]:
        return service.jobs.listing(user)

    return app
