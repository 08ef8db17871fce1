"""The server's trainer and signer: profile accuracy, robustness, size, signatures, keys.

Histories are synthetic with a known true profile (tests/model_history.py), so
"accurate" is measured against the truth, not against another estimator.
"""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from leaksense.core.cli import build_app
from leaksense.core.errors import ConfigError, InvalidInput
from leaksense.edge.detection.artifact import (
    MAX_ARTIFACT_BYTES,
    ModelArtifact,
    checksum,
    key_id,
    load_public_key,
    parse_signed,
)
from leaksense.edge.detection.clock import LocalClock
from leaksense.models.signing import (
    generate_keypair,
    load_private_key,
    public_key_text,
    sign,
    signed_json,
    signing_key,
)
from leaksense.models.train import HARMONICS, TRAINER, fit_profile, train_artifact
from leaksense.server.settings import load_settings
from model_history import history, true_profile, with_leak, with_spikes

CLOCK = LocalClock("Europe/Paris")


def relative_error(profile: np.ndarray, truth: np.ndarray) -> np.ndarray:
    error: np.ndarray = np.abs(profile - truth) / truth.mean()
    return error


def test_profile_recovers_a_known_profile_within_a_few_percent() -> None:
    epoch_s, flow = history(28)
    fit = fit_profile(epoch_s, flow, CLOCK)
    error = relative_error(fit.profile_m3h, true_profile())
    assert fit.profile_m3h.shape == (3, 96)
    assert fit.harmonics in HARMONICS
    assert error.mean() < 0.02, error.mean()
    assert error.max() < 0.06, error.max()
    for day_type in range(3):  # Saturday and Sunday are learned, not copied
        assert error[day_type].mean() < 0.02


def test_a_leak_and_spikes_in_the_history_are_not_learned_as_demand() -> None:
    epoch_s, clean = history(28)
    leak_m3h = 0.8 * clean.mean()  # a large burst for two whole days
    dirty = with_spikes(with_leak(epoch_s, clean, 9.0, 2.0, leak_m3h), 60)
    assert dirty.mean() > 1.05 * clean.mean()  # the contamination is not negligible
    clean_fit = fit_profile(epoch_s, clean, CLOCK).profile_m3h
    dirty_fit = fit_profile(epoch_s, dirty, CLOCK).profile_m3h
    assert relative_error(dirty_fit, true_profile()).mean() < 0.025
    assert relative_error(dirty_fit, clean_fit).mean() < 0.01


def test_weekend_without_history_borrows_the_weekday_shape() -> None:
    epoch_s, flow = history(5)  # Monday to Friday, and Saturday's first hour
    profile = fit_profile(epoch_s, flow, CLOCK).profile_m3h
    assert relative_error(profile[0], true_profile()[0]).mean() < 0.03
    assert relative_error(profile[1], profile[0]).max() < 0.01
    assert relative_error(profile[2], profile[0]).max() < 0.01


def test_too_short_or_unordered_history_is_refused() -> None:
    epoch_s, flow = history(2)
    with pytest.raises(InvalidInput, match="at least 3 days"):
        fit_profile(epoch_s, flow, CLOCK)
    epoch_s, flow = history(4)
    with pytest.raises(InvalidInput, match="increasing time order"):
        fit_profile(epoch_s[::-1].copy(), flow, CLOCK)


@pytest.fixture(scope="module")
def artifact() -> ModelArtifact:
    epoch_s, flow = history(60)
    return train_artifact("ss-inlet", epoch_s, flow, CLOCK, kind="sensor")


@pytest.fixture(scope="module")
def private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def test_trained_artifact_is_small_and_round_trips_signed(
    artifact: ModelArtifact, private_key: Ed25519PrivateKey
) -> None:
    assert artifact.trainer == TRAINER
    assert artifact.interval_s == 300
    signed = sign(artifact, private_key)
    data = signed_json(signed)
    assert len(data) <= MAX_ARTIFACT_BYTES
    assert len(data) < 6_000  # ≈ 3.4 KB today: far from the bound
    public = load_public_key(public_key_text(private_key))
    assert signed.key_id == key_id(public)
    assert parse_signed(data, public) == artifact


def tamper(data: bytes, change: dict[str, float]) -> bytes:
    body = json.loads(data)
    body["artifact"].update(change)
    return json.dumps(body).encode()


def test_tampered_unsigned_or_foreign_artifacts_are_refused(
    artifact: ModelArtifact, private_key: Ed25519PrivateKey
) -> None:
    data = signed_json(sign(artifact, private_key))
    public = private_key.public_key()
    with pytest.raises(InvalidInput, match="checksum mismatch"):
        parse_signed(tamper(data, {"night_baseline_m3h": 99.0}), public)
    forged = artifact.model_copy(update={"night_baseline_m3h": 99.0})
    recomputed = json.loads(data)  # a consistent checksum, but the old signature
    recomputed |= {"artifact": forged.model_dump(mode="json"), "sha256": checksum(forged)}
    with pytest.raises(InvalidInput, match="bad signature"):
        parse_signed(json.dumps(recomputed), public)
    with pytest.raises(InvalidInput, match="bad signature"):
        parse_signed(data, Ed25519PrivateKey.generate().public_key())
    unsigned = json.loads(data) | {"signature": None}
    with pytest.raises(InvalidInput, match="not signed"):
        parse_signed(json.dumps(unsigned), public)


def sign_raw(body: dict[str, object], private_key: Ed25519PrivateKey) -> bytes:
    """What a newer server would send: its own artifact fields, checksummed and signed."""
    payload = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return json.dumps(
        {
            "artifact": body,
            "sha256": hashlib.sha256(payload).hexdigest(),
            "signature": base64.b64encode(private_key.sign(payload)).decode("ascii"),
        }
    ).encode()


def test_an_artifact_from_a_newer_trainer_is_used_without_its_new_fields(
    artifact: ModelArtifact, private_key: Ed25519PrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    body = artifact.model_dump(mode="json")
    body["pressure_sigma_bar"] = 0.02
    body["params"] = body["params"] | {"pressure_k": 1.5}
    public = private_key.public_key()
    assert parse_signed(sign_raw(body, private_key), public) == artifact
    assert "pressure_sigma_bar" in caplog.text and "params.pressure_k" in caplog.text
    # Still signed: the new fields are covered by the signature like the others.
    forged = json.loads(sign_raw(body, private_key))
    forged["artifact"]["pressure_sigma_bar"] = 0.5
    with pytest.raises(InvalidInput, match="checksum mismatch"):
        parse_signed(json.dumps(forged), public)
    # A new format is a change an older gateway cannot ignore: refused.
    with pytest.raises(InvalidInput, match=r"artifact\.format"):
        parse_signed(sign_raw(body | {"format": "leaksense.model/2"}, private_key), public)


def test_an_artifact_over_16_kb_is_not_signed(
    artifact: ModelArtifact, private_key: Ed25519PrivateKey
) -> None:
    bloated = artifact.model_copy(update={"trainer": "x" * MAX_ARTIFACT_BYTES})
    with pytest.raises(InvalidInput, match="over 16384"):
        sign(bloated, private_key)


def test_keygen_writes_a_private_key_0600_and_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "signing.pem"
    public = generate_keypair(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert len(base64.b64decode(public)) == 32
    assert public_key_text(load_private_key(path)) == public
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        generate_keypair(path)
    assert path.read_bytes() == before


def test_keygen_command_prints_the_gateway_config(tmp_path: Path) -> None:
    path = tmp_path / "signing.pem"
    result = CliRunner().invoke(build_app(), ["models", "keygen", "--out", str(path)])
    assert result.exit_code == 0, result.output
    public = public_key_text(load_private_key(path))
    assert f'public_key = "{public}"' in result.output
    again = CliRunner().invoke(build_app(), ["models", "keygen", "--out", str(path)])
    assert again.exit_code != 0
    assert isinstance(again.exception, ConfigError)


def test_a_file_that_is_not_an_ed25519_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "not-a-key.pem"
    path.write_text("hello")
    with pytest.raises(ConfigError, match="not an unencrypted PEM"):
        load_private_key(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_private_key(tmp_path / "missing.pem")


def test_training_key_is_required_in_production_and_created_in_development(
    tmp_path: Path,
) -> None:
    production = load_settings(mode="production", database_url="sqlite:///x.db", data_dir=tmp_path)
    with pytest.raises(ConfigError, match="MODEL_SIGNING_KEY_FILE"):
        signing_key(production)
    development = load_settings(data_dir=tmp_path / "data")
    key, note = signing_key(development)
    assert note is not None and "public key" in note
    again, note = signing_key(development)
    assert note is None
    assert public_key_text(again) == public_key_text(key)
    generate_keypair(tmp_path / "prod.pem")
    configured = production.model_copy(update={"model_signing_key_file": tmp_path / "prod.pem"})
    assert public_key_text(signing_key(configured)[0]) == public_key_text(
        load_private_key(tmp_path / "prod.pem")
    )
