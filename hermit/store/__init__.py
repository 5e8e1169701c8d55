"""Storage: peewee lives only in this package."""
