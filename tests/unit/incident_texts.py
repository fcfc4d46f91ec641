"""Incident file texts the unit tests start from (a valid one, edited case by case)."""

GOOD = """
[incident]
name = "demo"
description = "Kafka down for a while"

[workload]
records = 100

[expect]
no_loss = true

[[steps]]
phase = "during"
at = 0.5
duration = 2.0
fault = "link_down"
link = "kafka"
"""
