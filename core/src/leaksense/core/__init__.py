"""Leaksense shared core: what every deployable agrees on.

- :mod:`leaksense.core.messages` — the versioned wire messages (readings, alerts,
  ingest batches) exchanged between sensor nodes, gateways and the server;
- :mod:`leaksense.core.topics` — the MQTT topic scheme;
- :mod:`leaksense.core.errors` — the single error hierarchy;
- :mod:`leaksense.core.cli` — the ``leaksense`` command, extended by each installed
  deployable through the ``leaksense.cli`` entry-point group.
"""
