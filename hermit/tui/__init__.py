"""The Hermit TUI: a live traffic dashboard with the proxy running inside it (Textual)."""
