"""Leaksense simulator: synthetic DMAs, leaks and meters, for tests, demos and benchmarks.

Scenarios (``docs/scenario-format.md``):

- :mod:`~leaksense.simulator.spec` — the YAML file format as pydantic models;
- :mod:`~leaksense.simulator.yamlfile` — parse a file, refuse it naming line and field;
- :mod:`~leaksense.simulator.checks` — references, unique ids, intervals;
- :mod:`~leaksense.simulator.scenario` — a file placed in time; the built-in scenarios
  (their names in :mod:`~leaksense.simulator.builtin`).

The model, water first, then meters:

- :mod:`~leaksense.simulator.timegrid` — the UTC grid with local hours, days, holidays;
- :mod:`~leaksense.simulator.demand` — consumer types (a table) and their demand;
- :mod:`~leaksense.simulator.leaks` — pressure and FAVAD leak flows;
- :mod:`~leaksense.simulator.network` — true flows of each DMA, cascades included;
- :mod:`~leaksense.simulator.meters` — meter models (a table): registers, pulses, noise;
- :mod:`~leaksense.simulator.faults` — dropouts, flatlines, spikes, resets, clock drift;
- :mod:`~leaksense.simulator.billing` — reading rounds and billed periods;
- :mod:`~leaksense.simulator.truth`, :mod:`~leaksense.simulator.balance` — ground truth;
- :mod:`~leaksense.simulator.generate` — :func:`simulate`: the whole pipeline.

Output and replay:

- :mod:`~leaksense.simulator.files` — CSV / JSON files, validated on the way in;
- :mod:`~leaksense.simulator.sources` — what replay reads (scenarios, CSV, InfluxDB exports);
- :mod:`~leaksense.simulator.publish` — replay over MQTT (Leaksense JSON or ESPHome);
- :mod:`~leaksense.simulator.cli` — ``leaksense simulate`` and ``leaksense replay``.
"""
