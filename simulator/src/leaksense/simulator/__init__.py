"""Leaksense simulator: synthetic DMAs, leaks and meters, for tests, demos and benchmarks.

- :mod:`~leaksense.simulator.scenario` — scenarios as frozen data, and the built-in table;
- :mod:`~leaksense.simulator.generate` — deterministic readings, billing and truth;
- :mod:`~leaksense.simulator.files` — CSV / JSON files, validated on the way in;
- :mod:`~leaksense.simulator.publish` — replay over MQTT (Leaksense JSON or ESPHome);
- :mod:`~leaksense.simulator.cli` — ``leaksense simulate`` and ``leaksense replay``.
"""
