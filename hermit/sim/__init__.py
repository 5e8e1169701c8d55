"""Simulated upstreams used by tests, benchmarks and demos."""
