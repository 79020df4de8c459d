"""An example merchant integration: a checkout page and the small backend it needs (see web/README.md)."""
