"""``python -m exporter [--config FILE]`` (also the ``faultline-exporter`` console script)."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile

import uvicorn

from exporter import config as config_module
from exporter import defects, jsonlog
from exporter.auth import Tokens
from exporter.errors import ConfigError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="exporter", description=__doc__)
    parser.add_argument("--config", help="TOML file; EXPORTER_* environment variables override it")
    args = parser.parse_args(argv)
    try:
        cfg = config_module.load(args.config)
        defects.active()
        tokens = Tokens.load(cfg.api_tokens_file)
    except ConfigError as exc:
        print(f"exporter: configuration error: {exc}", file=sys.stderr)
        return 2
    jsonlog.configure(cfg.log_level)
    # Before exporter.metrics is imported: every process of this exporter writes its samples here.
    own_metrics_dir = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    if own_metrics_dir:
        sweep_metrics_dirs()
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix=f"{METRICS_PREFIX}{os.getpid()}-")
    try:
        return _serve(cfg, tokens)
    finally:
        if own_metrics_dir:
            shutil.rmtree(os.environ.pop("PROMETHEUS_MULTIPROC_DIR"), ignore_errors=True)


METRICS_PREFIX = "exporter-metrics-"


def sweep_metrics_dirs(base: str | None = None) -> list[str]:
    """Remove the metrics directories of exporters that died without cleaning up (SIGKILL): each
    is named after the pid that made it, and a directory whose pid no longer runs is left over."""
    base = base or tempfile.gettempdir()
    removed = []
    for name in os.listdir(base):
        if not name.startswith(METRICS_PREFIX):
            continue
        pid_text = name[len(METRICS_PREFIX):].split("-", 1)[0]
        if not pid_text.isdigit() or _running(int(pid_text)):
            continue  # a live exporter's, or one named otherwise (its pid unknown): left alone
        shutil.rmtree(os.path.join(base, name), ignore_errors=True)
        removed.append(name)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def _serve(cfg: config_module.Config, tokens: Tokens) -> int:
    from exporter.api import create_app
    from exporter.http_limits import MAX_CONNECTIONS, limited
    from exporter.service import Service

    app = create_app(Service(cfg), tokens)
    server = uvicorn.Server(uvicorn.Config(app, host=cfg.http_host, port=cfg.http_port, log_config=None,
                                           access_log=False, lifespan="on", http=limited(cfg.api_read_timeout_s),
                                           limit_concurrency=MAX_CONNECTIONS))
    logging.getLogger("exporter").info("http api listening", extra={"host": cfg.http_host, "port": cfg.http_port})
    server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
