"""Floor model: validated input about the system under test. The target definition (knobs,
endpoints, record and log formats, capabilities, dead-letter kinds), the TOML reader that points
at file:line, ``Expect`` and the strict pydantic configuration every input model uses, and the
loading of a team's modules (entry points, a target's ``steps``)."""
