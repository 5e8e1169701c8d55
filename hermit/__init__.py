"""Hermit: an OpenAI-compatible LLM proxy with a local token and cost ledger."""

__version__ = "0.2.0"
