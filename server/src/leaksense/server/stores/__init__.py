"""Reading stores: where flow readings live, behind the :class:`ReadingStore` Protocol.

Two adapters pass one contract test suite (``tests/server/test_store_contract.py``):
SQLite (the embedded default) and InfluxDB (v1 HTTP API: ``/write`` and ``/query``).
"""

from leaksense.server.stores.base import HourlyFlow, ReadingStore, check_range

__all__ = ["HourlyFlow", "ReadingStore", "check_range"]
