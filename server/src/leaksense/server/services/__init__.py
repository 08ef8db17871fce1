"""Application services: each takes a database session (and a reading store where
needed), applies the domain rules and raises errors from :mod:`leaksense.core.errors`.
Routes and CLI commands call these and nothing deeper."""
