"""HTTP: the Quart app, the upstream client and the hypercorn server live here."""
