"""Faultline: chaos harness and verification suite for data exporters."""
