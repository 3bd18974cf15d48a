"""Benchmark harness: seed a large database, serve it with gunicorn, load it with wrk (see docs/benchmarks.md)."""
