"""``python launch.py PLUGIN ARGS...``: the ``leaksense`` command with one plugin only.

The real root app (:func:`leaksense.core.cli.main`: logging setup, error handling),
with only the ``leaksense.cli`` entry point named ``PLUGIN`` registered (``gateway``
or ``server``), as on a machine where only that package is installed. Loading every
plugin of the workspace (models, reports...) costs seconds per start on a loaded
2-core machine, and the suite starts processes often.
"""

from __future__ import annotations

import sys
from importlib.metadata import EntryPoint, entry_points

from leaksense.core import cli


def main() -> None:
    plugin = sys.argv[1]

    def only(group: str) -> list[EntryPoint]:
        return [ep for ep in entry_points(group=group) if ep.name == plugin]

    vars(cli)["entry_points"] = only  # what build_app() looks plugins up with
    sys.argv = ["leaksense", *sys.argv[2:]]
    cli.main()


if __name__ == "__main__":
    main()
