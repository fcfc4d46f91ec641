"""``python -m exporter [--config FILE]`` (also the ``faultline-exporter`` console script)."""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn

from exporter import config as config_module
from exporter import defects, jsonlog
from exporter.errors import ConfigError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="exporter", description=__doc__)
    parser.add_argument("--config", help="TOML file; EXPORTER_* environment variables override it")
    args = parser.parse_args(argv)
    try:
        cfg = config_module.load(args.config)
        defects.active()
    except ConfigError as exc:
        print(f"exporter: configuration error: {exc}", file=sys.stderr)
        return 2
    jsonlog.configure(cfg.log_level)
    from exporter.api import create_app
    from exporter.service import Service

    app = create_app(Service(cfg))
    server = uvicorn.Server(uvicorn.Config(app, host=cfg.http_host, port=cfg.http_port, log_config=None,
                                           access_log=False, lifespan="on"))
    logging.getLogger("exporter").info("http api listening", extra={"host": cfg.http_host, "port": cfg.http_port})
    server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
