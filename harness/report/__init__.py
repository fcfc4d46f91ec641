"""Floor report: typed results and what people read. The journal (typed records of what
happened), ``ScenarioResult`` and ``RunReport``, the exporter's resource samples and trends,
report.json, report.html, explore's report and ``compare``."""
