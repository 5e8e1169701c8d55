"""Services shared by the HTTP routes, the CLI and the TUI: all of Hermit's logic."""
