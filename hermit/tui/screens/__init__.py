"""Screens of the Hermit TUI: the main screen and its modal dialogs."""
