"""Implementations of the core ports: stores, bus, models."""
