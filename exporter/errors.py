"""Exporter exceptions: one root; transient ones are retried, permanent ones dead-lettered."""

from __future__ import annotations


class ExporterError(Exception):
    """Root of every exception the exporter raises on purpose."""


class ConfigError(ExporterError, ValueError):
    """A setting is missing or malformed; the message names it."""


class TransientError(ExporterError):
    """Worth retrying: a timeout, a refused or reset connection, a full disk, a broker away."""

    def __init__(self, stage: str, cause: BaseException | str) -> None:
        self.stage = stage
        self.cause = cause
        kind = f"{cause.__class__.__name__}: " if isinstance(cause, BaseException) else ""
        super().__init__(f"{stage}: {kind}{cause}")


class PermanentRecordError(ExporterError):
    """This record can never be delivered as it is: it goes to the dead-letter stream."""

    def __init__(self, record_id: int | str, reason: str, detail: str) -> None:
        self.record_id = record_id
        self.reason = reason
        self.detail = detail
        super().__init__(f"record {record_id}: {reason}: {detail}")


class JobError(ExporterError):
    """A batch export job failed; the job's status carries this message."""
