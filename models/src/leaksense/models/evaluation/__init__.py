"""Evaluation of leak detection on labelled simulated scenarios (``leaksense models evaluate``).

The simulator knows the truth (every leak, its size and timing, every sensor fault),
so the gateway's detection can be scored the way a utility would judge it: how many
leaks of each size it finds and how fast, how often it cries wolf, and whether a
broken sensor ever raises a leak alert. The plain minimum-night-flow rule is scored
the same way, side by side, so every learned part has to prove it beats it.

- :mod:`.scenarios`: the declarative grid of cases (network, noise, season, event);
- :mod:`.build`: a case as a scenario file, its leaks sized against its own night flow;
- :mod:`.replay`: readings through the :class:`DetectionEngine` and the MNF rule;
- :mod:`.baseline`: the MNF rule itself;
- :mod:`.score`: alerts matched to the truth, and the totals;
- :mod:`.runner`: cases in parallel; :mod:`.sweep`: parameter choice on the tuning set;
- :mod:`.report`: Markdown tables.
"""
