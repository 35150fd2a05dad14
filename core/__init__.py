"""Foundations every app may use: environment, encryption, the changes feed, secrets masking,
the database outage, cache, logging, metrics and tracing registries, CLI helpers, the data dir."""
