"""Provisioning of the real servers Faultline runs: find them, or install and cache them.

``faultline setup`` calls :func:`provision_all`; ``faultline setup --check`` calls
:func:`check_all`, which only looks.
"""

from harness.provision.components import COMPONENTS, Installed, check_all, provision_all, require

__all__ = ["COMPONENTS", "Installed", "check_all", "provision_all", "require"]
