"""``python -m harness.cli``: the ``faultline`` command."""

from harness.cli.main import main

main()
