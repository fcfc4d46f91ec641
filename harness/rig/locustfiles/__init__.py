"""Locustfiles, run only in a Locust subprocess (importing locust monkey-patches the standard library).

They are configured through ``FAULTLINE_LOAD_*`` environment variables set by ``harness.rig.load``.
"""
