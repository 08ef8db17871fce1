"""Names of the built-in scenarios (``scenarios/NAME.yaml``), apart from
:mod:`~leaksense.simulator.scenario` so that the ``leaksense`` command can list them in
its help without loading numpy."""

BUILTIN_NAMES = ("saint-savin", "rural-3dma", "stress")
