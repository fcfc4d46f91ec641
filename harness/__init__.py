"""Faultline: chaos harness and verification suite for data exporters."""


def faultline_version() -> str:
    """The installed distribution's version (reports and incident files say which Faultline
    judged them); "unknown" when run from a tree that was never installed."""
    from importlib import metadata

    try:
        return metadata.version("faultline")
    except metadata.PackageNotFoundError:
        return "unknown"
