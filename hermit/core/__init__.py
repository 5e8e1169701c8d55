"""Hermit's domain: providers, usage accounting, profiles, the ledger and analytics."""
