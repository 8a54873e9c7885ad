"""Prometheus metrics served by the supervisor (docs/metrics.md).

``settings`` is imported by ``engine.config`` and stays free of ``prometheus_client``; the
collector and server import it only when the supervisor starts the endpoint.
"""
