"""Floor cli (top): the ``faultline`` command, its output, the pytest plugin and the benchmark entry.
May import every floor below; nothing imports it."""
