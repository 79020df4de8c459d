"""An example merchant integration: a checkout page and the small backend it needs (README: "Take payments on
your own checkout page")."""
