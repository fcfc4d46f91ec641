"""Provisioning of the real servers Faultline runs: find them, or install and cache them.

``faultline setup`` calls :func:`provision_all`; ``faultline setup --check`` calls
:func:`check_all`, which only looks. ``--with debezium`` (or ``debezium-server``) adds an optional component.
"""

from harness.provision.components import (
    COMPONENTS,
    OPTIONAL,
    Debezium,
    DebeziumServer,
    Installed,
    check_all,
    ensure,
    provision_all,
    require,
)

__all__ = ["COMPONENTS", "OPTIONAL", "Debezium", "DebeziumServer", "Installed", "check_all", "ensure", "provision_all",
           "require"]
