"""Generative families. Each implements the Generator protocol in generator.py."""
