"""Each deployable builds to its own wheel holding only its own code.

A Raspberry Pi installs ``leaksense-edge``: its wheel must not pull FastAPI, an
InfluxDB client or scikit-learn.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
MEMBERS = ("core", "edge", "server", "models", "simulator", "demo")
HEAVY = ("fastapi", "influxdb", "scikit-learn", "sqlalchemy", "uvicorn", "amqtt")
"""numpy is allowed: the gateway runs its detection models with numpy alone."""


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    uv = os.environ.get("UV") or shutil.which("uv")  # `uv run` exports UV
    if uv is None:
        pytest.fail("uv is required to build the wheels (make bootstrap installs it)")
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [uv, "build", "--all-packages", "--wheel", "--out-dir", str(out), "--quiet"],
        cwd=ROOT,
        check=True,
        timeout=300,
    )
    found = {p.name.split("-")[0].removeprefix("leaksense_"): p for p in out.glob("*.whl")}
    assert sorted(found) == sorted(MEMBERS)
    return found


def contents(wheel: Path) -> tuple[set[str], list[str]]:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(metadata_name).decode())
    packages = {"/".join(n.split("/")[:2]) for n in names if n.startswith("leaksense/")}
    return packages, metadata.get_all("Requires-Dist") or []


@pytest.mark.packaging
@pytest.mark.slow
@pytest.mark.parametrize("member", MEMBERS)
def test_wheel_holds_only_its_package(wheels: dict[str, Path], member: str) -> None:
    packages, _ = contents(wheels[member])
    assert packages == {f"leaksense/{member}"}


@pytest.mark.packaging
@pytest.mark.slow
def test_gateway_installs_without_server_dependencies(wheels: dict[str, Path]) -> None:
    requires = [r.lower() for r in contents(wheels["edge"])[1] + contents(wheels["core"])[1]]
    assert any(r.startswith("paho-mqtt") for r in requires)
    for heavy in HEAVY:
        assert not any(r.startswith(heavy) for r in requires), f"edge pulls {heavy}"
