"""Report period kinds, apart from the report services so that the ``leaksense`` command
can list them in its help without loading SQLAlchemy."""

from typing import Literal

PeriodKind = Literal["day", "week", "month", "year", "custom"]
