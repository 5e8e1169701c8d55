"""Widgets of the Hermit TUI."""
