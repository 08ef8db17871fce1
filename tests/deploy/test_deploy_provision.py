"""``leaksense provision``: what each command writes, idempotence, rotation, errors.

The broker side (that Mosquitto accepts these users and enforces their ACL) is in
test_deploy_broker.py; here the files, their modes and the server database.
"""

from __future__ import annotations

import grp
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from typer.testing import CliRunner

from leaksense.core.cli import build_app, main
from leaksense.core.errors import AuthenticationError, ConfigError, NotFoundError
from leaksense.server.db import ApiToken, make_engine, make_sessionmaker
from leaksense.server.provision.files import read_env_file, read_secrets_file
from leaksense.server.provision.mosquitto import (
    hash_password,
    read_password_file,
    verify_password,
)
from leaksense.server.security import hash_token
from leaksense.server.services import entities
from services import MOSQUITTO_PASSWD_BINARY, require_binary

ROOT = Path(__file__).resolve().parents[2]
NETWORK = ROOT / "firmware-config" / "network-saint-savin.toml"
SHIPPED_ACL = ROOT / "firmware-config" / "mosquitto" / "leaksense.acl"


def _invoke(*args: str) -> str:
    """Run ``leaksense provision ...`` in-process; errors propagate as exceptions."""
    result = CliRunner().invoke(build_app(), ["provision", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


# --- tls ------------------------------------------------------------------------------


def test_tls_creates_a_ca_and_a_broker_certificate(tmp_path: Path) -> None:
    out = _invoke("tls", "--out-dir", str(tmp_path), "--host", "gw.local", "--host", "10.0.0.2")
    assert out.count("created") == 4
    assert {_mode(tmp_path / n) for n in ("ca.key", "broker.key")} == {0o600}
    assert _mode(tmp_path / "ca.crt") == 0o644
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.crt").read_bytes())
    broker = x509.load_pem_x509_certificate((tmp_path / "broker.crt").read_bytes())
    broker.verify_directly_issued_by(ca)
    names = broker.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["gw.local"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["10.0.0.2"]


def test_tls_twice_changes_nothing_and_rotate_keeps_the_ca(tmp_path: Path) -> None:
    args = ("tls", "--out-dir", str(tmp_path), "--host", "gw.local")
    _invoke(*args)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert "nothing changed" in _invoke(*args)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    _invoke(*args, "--rotate")
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after["ca.crt"] == before["ca.crt"]
    assert after["ca.key"] == before["ca.key"]
    assert after["broker.key"] != before["broker.key"]


def test_tls_reissues_the_broker_certificate_when_the_hosts_change(tmp_path: Path) -> None:
    _invoke("tls", "--out-dir", str(tmp_path), "--host", "gw.local")
    out = _invoke("tls", "--out-dir", str(tmp_path), "--host", "gw.local", "--host", "gw2.local")
    assert "updated   broker certificate" in out
    broker = x509.load_pem_x509_certificate((tmp_path / "broker.crt").read_bytes())
    names = broker.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(names.get_values_for_type(x509.DNSName)) == ["gw.local", "gw2.local"]


def test_tls_signs_with_a_given_ca(tmp_path: Path) -> None:
    _invoke("tls", "--out-dir", str(tmp_path / "corp"), "--host", "corp")
    corp_ca = tmp_path / "corp" / "ca.crt"
    _invoke(
        "tls",
        "--out-dir",
        str(tmp_path / "site"),
        "--host",
        "gw.local",
        "--ca-cert",
        str(corp_ca),
        "--ca-key",
        str(tmp_path / "corp" / "ca.key"),
    )
    assert not (tmp_path / "site" / "ca.key").exists()
    assert (tmp_path / "site" / "ca.crt").read_bytes() == corp_ca.read_bytes()
    broker = x509.load_pem_x509_certificate((tmp_path / "site" / "broker.crt").read_bytes())
    broker.verify_directly_issued_by(x509.load_pem_x509_certificate(corp_ca.read_bytes()))


def test_tls_refuses_half_a_pair(tmp_path: Path) -> None:
    _invoke("tls", "--out-dir", str(tmp_path), "--host", "gw.local")
    (tmp_path / "ca.key").unlink()
    with pytest.raises(ConfigError, match=r"ca\.key is missing"):
        _invoke("tls", "--out-dir", str(tmp_path), "--host", "gw.local")


# --- node -----------------------------------------------------------------------------


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    """A broker folder with the shipped ACL and TLS material, as on a fresh gateway."""
    shutil.copy(SHIPPED_ACL, tmp_path / "leaksense.acl")
    _invoke("tls", "--out-dir", str(tmp_path / "tls"), "--host", "gw.local")
    return tmp_path


def _node(site_dir: Path, node_id: str, *extra: str, site: str = "saint-savin") -> str:
    return _invoke(
        "node",
        node_id,
        "--site",
        site,
        "--broker-host",
        "gw.local",
        "--wifi-ssid",
        "mairie",
        "--wifi-password",
        "wifi-secret",
        "--templates-dir",
        str(ROOT / "firmware-config" / "esphome"),
        "--out-dir",
        str(site_dir / "nodes"),
        "--passwd-file",
        str(site_dir / "leaksense.passwd"),
        "--acl-file",
        str(site_dir / "leaksense.acl"),
        "--ca-file",
        str(site_dir / "tls" / "ca.crt"),
        *extra,
    )


def test_node_writes_credentials_acl_and_secrets(site_dir: Path) -> None:
    _node(site_dir, "ss-school")
    secrets_path = site_dir / "nodes" / "ss-school" / "secrets.yaml"
    secrets = read_secrets_file(secrets_path)
    assert _mode(secrets_path) == 0o600
    assert _mode(site_dir / "leaksense.passwd") == 0o600
    assert secrets["mqtt_broker"] == "gw.local"
    assert secrets["wifi_ssid"] == "mairie"
    assert secrets["mqtt_ca_certificate"] == (site_dir / "tls" / "ca.crt").read_text()
    assert len(secrets["mqtt_password"]) >= 32
    entry = read_password_file(site_dir / "leaksense.passwd")["ss-school"]
    assert entry.startswith("$7$")
    assert verify_password(secrets["mqtt_password"], entry)
    acl = (site_dir / "leaksense.acl").read_text()
    assert acl.startswith(SHIPPED_ACL.read_text().rstrip())
    assert "user ss-school\ntopic write leaksense/saint-savin/ss-school/flow\n" in acl
    wrapper = (site_dir / "nodes" / "ss-school" / "ss-school.yaml").read_text()
    assert "node_id: ss-school" in wrapper
    assert "!include ../../" in wrapper


def test_node_twice_changes_nothing(site_dir: Path) -> None:
    _node(site_dir, "ss-school")
    _node(site_dir, "ss-farm")
    before = {p: p.read_bytes() for p in site_dir.rglob("*") if p.is_file()}
    out = _node(site_dir, "ss-school")
    assert "nothing changed" in out
    assert {p: p.read_bytes() for p in site_dir.rglob("*") if p.is_file()} == before


def test_node_rotate_replaces_only_that_nodes_password(site_dir: Path) -> None:
    _node(site_dir, "ss-school")
    _node(site_dir, "ss-farm")
    old = read_secrets_file(site_dir / "nodes" / "ss-school" / "secrets.yaml")
    farm_entry = read_password_file(site_dir / "leaksense.passwd")["ss-farm"]
    _node(site_dir, "ss-school", "--rotate")
    new = read_secrets_file(site_dir / "nodes" / "ss-school" / "secrets.yaml")
    entries = read_password_file(site_dir / "leaksense.passwd")
    assert new["mqtt_password"] != old["mqtt_password"]
    assert verify_password(new["mqtt_password"], entries["ss-school"])
    assert not verify_password(old["mqtt_password"], entries["ss-school"])
    assert entries["ss-farm"] == farm_entry


def test_node_moved_to_another_site_gets_its_acl_block_replaced(site_dir: Path) -> None:
    _node(site_dir, "ss-school")
    out = _node(site_dir, "ss-school", site="other-site")
    assert "updated   ACL of ss-school" in out
    acl = (site_dir / "leaksense.acl").read_text()
    assert acl.count("user ss-school") == 1
    assert "leaksense/other-site/ss-school/flow" in acl
    assert "leaksense/saint-savin/ss-school/flow" not in acl


def test_node_repairs_a_password_file_that_lost_its_entry(site_dir: Path) -> None:
    _node(site_dir, "ss-school")
    (site_dir / "leaksense.passwd").write_text("")
    out = _node(site_dir, "ss-school")
    assert "updated   broker user ss-school" in out
    password = read_secrets_file(site_dir / "nodes" / "ss-school" / "secrets.yaml")
    entry = read_password_file(site_dir / "leaksense.passwd")["ss-school"]
    assert verify_password(password["mqtt_password"], entry)


@pytest.mark.parametrize(
    ("node_id", "message"),
    [
        ("SS_School", "lower-case"),
        ("ss/school", "lower-case"),
        ("a" * 32, "lower-case"),
        ("leaksense-gateway", "reserved"),
    ],
)
def test_node_refuses_bad_ids(site_dir: Path, node_id: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _node(site_dir, node_id)
    assert not (site_dir / "leaksense.passwd").exists()


def test_node_errors_are_clear(site_dir: Path) -> None:
    _node(site_dir, "ss-school")
    shutil.rmtree(site_dir / "nodes" / "ss-school")
    with pytest.raises(ConfigError, match="already has a broker password but no secrets file"):
        _node(site_dir, "ss-school")
    with pytest.raises(ConfigError, match=r"template .*nope\.yaml not found"):
        _node(site_dir, "ss-farm", "--template", "nope")
    (site_dir / "leaksense.acl").unlink()
    with pytest.raises(ConfigError, match=r"ACL file .* not found"):
        _node(site_dir, "ss-farm")
    shutil.copy(SHIPPED_ACL, site_dir / "leaksense.acl")
    (site_dir / "tls" / "ca.crt").unlink()
    with pytest.raises(ConfigError, match="run `leaksense provision tls` first"):
        _node(site_dir, "ss-farm")
    # A refused run writes nothing: the node can be provisioned once the cause is fixed.
    assert "ss-farm" not in read_password_file(site_dir / "leaksense.passwd")
    assert not (site_dir / "nodes" / "ss-farm").exists()


def test_node_leaves_hand_written_acl_users_alone(site_dir: Path) -> None:
    with (site_dir / "leaksense.acl").open("a") as acl:
        acl.write("\nuser ss-school\ntopic write custom/#\n")
    with pytest.raises(ConfigError, match="written by hand"):
        _node(site_dir, "ss-school")


def test_password_hashes_match_mosquitto_passwd(tmp_path: Path) -> None:
    binary = require_binary("mosquitto_passwd", MOSQUITTO_PASSWD_BINARY)  # CI: fail if missing
    passwd = tmp_path / "passwd"
    passwd.touch()
    subprocess.run([binary, "-b", str(passwd), "alice", "s3cret"], check=True)
    theirs = read_password_file(passwd)["alice"]
    assert verify_password("s3cret", theirs)
    assert not verify_password("other", theirs)
    ours = hash_password("s3cret")
    assert ours.split("$")[1:3] == theirs.split("$")[1:3]  # $7$, same iterations


# --- gateway --------------------------------------------------------------------------


@pytest.fixture
def server_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A server database with the Saint-Savin network loaded (LEAKSENSE_SERVER_*)."""
    url = f"sqlite:///{tmp_path / 'server.db'}"
    monkeypatch.setenv("LEAKSENSE_SERVER_DATABASE_URL", url)
    monkeypatch.setenv("LEAKSENSE_SERVER_DATA_DIR", str(tmp_path / "data"))
    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        entities.load_network(session, entities.read_network_file(NETWORK))
    engine.dispose()
    return url


def _token_record(url: str, token: str) -> ApiToken | None:
    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        record: ApiToken | None = session.get(ApiToken, hash_token(token))
    engine.dispose()
    return record


def _gateway(env_file: Path, *extra: str) -> str:
    return _invoke(
        "gateway", "gw-saint-savin", "--site", "saint-savin", "--env-file", str(env_file), *extra
    )


def test_gateway_token_is_issued_once_and_written_0600(server_db: str, tmp_path: Path) -> None:
    env_file = tmp_path / "gateway.env"
    _gateway(env_file)
    assert _mode(env_file) == 0o600
    token = read_env_file(env_file)["LEAKSENSE_GATEWAY_TOKEN"]
    record = _token_record(server_db, token)
    assert record is not None
    assert record.kind == "gateway"
    assert record.gateway_id == "gw-saint-savin"
    before = env_file.read_bytes()
    assert "nothing changed" in _gateway(env_file)
    assert env_file.read_bytes() == before


def test_gateway_rotate_revokes_the_old_token(server_db: str, tmp_path: Path) -> None:
    env_file = tmp_path / "gateway.env"
    env_file.write_text("# kept\nLEAKSENSE_GATEWAY_UPLINK_URL=https://central.example.org\n")
    _gateway(env_file)
    old = read_env_file(env_file)["LEAKSENSE_GATEWAY_TOKEN"]
    _gateway(env_file, "--rotate")
    env = read_env_file(env_file)
    assert env["LEAKSENSE_GATEWAY_TOKEN"] != old
    assert env["LEAKSENSE_GATEWAY_UPLINK_URL"] == "https://central.example.org"
    assert env_file.read_text().startswith("# kept\n")
    old_record = _token_record(server_db, old)
    assert old_record is not None
    assert old_record.revoked_at is not None
    new_record = _token_record(server_db, env["LEAKSENSE_GATEWAY_TOKEN"])
    assert new_record is not None
    assert new_record.revoked_at is None


def test_gateway_errors_are_clear(server_db: str, tmp_path: Path) -> None:
    env_file = tmp_path / "gateway.env"
    env_file.write_text("LEAKSENSE_GATEWAY_TOKEN=lks_not-a-real-token\n")
    with pytest.raises(AuthenticationError, match="pass --rotate"):
        _gateway(env_file)
    with pytest.raises(NotFoundError, match="site 'nowhere' does not exist"):
        _invoke("gateway", "gw-2", "--site", "nowhere", "--env-file", str(tmp_path / "g2.env"))
    with pytest.raises(ConfigError, match="gateway id"):
        _invoke("gateway", "gw/2", "--env-file", str(tmp_path / "g3.env"))


def test_gateway_mqtt_credentials_are_idempotent(tmp_path: Path) -> None:
    env_file, passwd = tmp_path / "gateway.env", tmp_path / "passwd"
    args = ("gateway-mqtt", "--env-file", str(env_file), "--passwd-file", str(passwd))
    _invoke(*args)
    env = read_env_file(env_file)
    assert env["LEAKSENSE_GATEWAY_MQTT_USERNAME"] == "leaksense-gateway"
    entry = read_password_file(passwd)["leaksense-gateway"]
    assert verify_password(env["LEAKSENSE_GATEWAY_MQTT_PASSWORD"], entry)
    assert "nothing changed" in _invoke(*args)
    _invoke(*args, "--rotate")
    assert (
        read_env_file(env_file)["LEAKSENSE_GATEWAY_MQTT_PASSWORD"]
        != (env["LEAKSENSE_GATEWAY_MQTT_PASSWORD"])
    )


def test_the_command_exits_2_with_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through the `leaksense` entry point: a clean message and exit 2, no traceback."""
    argv = ["leaksense", "provision", "tls", "--out-dir", str(tmp_path), "--ca-cert", "ca.crt"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "error: --ca-cert and --ca-key go together" in err
    assert "Traceback" not in err


def test_broker_files_stay_readable_by_the_broker_group(site_dir: Path) -> None:
    """With --broker-group the broker's files are 0640 and keep it on later writes."""
    group = grp.getgrgid(os.getgid())
    _node(site_dir, "ss-school", "--broker-group", group.gr_name)
    passwd = site_dir / "leaksense.passwd"
    for path in (passwd, site_dir / "leaksense.acl"):
        assert _mode(path) == 0o640
        assert path.stat().st_gid == group.gr_gid
    _invoke("gateway-mqtt", "--env-file", str(site_dir / "g.env"), "--passwd-file", str(passwd))
    assert _mode(passwd) == 0o640
    assert "leaksense-gateway" in read_password_file(passwd)
    with pytest.raises(ConfigError, match="no group named"):
        _node(site_dir, "ss-farm", "--broker-group", "no-such-group-here")
