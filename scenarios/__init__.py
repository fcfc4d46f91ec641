"""Faultline scenarios: one module per scenario."""
