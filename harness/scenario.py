"""The public face for scenario authors: ``from harness.scenario import Scenario, LinkDown, ...``.

The model lives in ``harness.catalogue.scenario`` (its floor); this module only re-exports it so
that scenario modules, incident tooling and a team's code have one stable name. Nothing inside
``harness`` imports this face (``tests/unit/test_architecture.py`` checks it)."""

from harness.catalogue.scenario import *  # noqa: F403
from harness.catalogue.scenario import __all__ as __all__
