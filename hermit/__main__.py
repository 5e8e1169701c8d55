"""`python -m hermit` runs the command line."""

from hermit.cli import main

raise SystemExit(main())
