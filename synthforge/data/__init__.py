"""Seed data: reading sources and profiling them."""
