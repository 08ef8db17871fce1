"""``leaksense`` starts fast: its commands load their stack only when they run."""

from __future__ import annotations

import subprocess
import sys

HEAVY = (
    "amqtt",
    "cryptography",
    "fastapi",
    "httpx",
    "leaksense.server.app",
    "numpy",
    "paho",
    "pydantic",
    "sklearn",
    "sqlalchemy",
    "uvicorn",
)


def test_building_the_app_loads_no_heavy_stack() -> None:
    code = (
        "import sys; from leaksense.core.cli import build_app; build_app(); "
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
