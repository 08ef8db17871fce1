"""TLS material for the broker: a CA (made here, or given) and a broker certificate.

Keys are ECDSA P-256: small and fast for the ESP32's mbedTLS and for Mosquitto. The
broker certificate names every host name and address the nodes and the gateway use
to reach the broker (subject alternative names); a node checks it against the CA
whose PEM is in its ESPHome secrets.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from leaksense.core.errors import ConfigError
from leaksense.server.provision.files import PUBLIC_MODE, SECRET_MODE, Step, read_text, write_file

CA_VALIDITY_DAYS = 20 * 365
BROKER_VALIDITY_DAYS = 5 * 365
RENEW_BEFORE_DAYS = 30
"""A broker certificate this close to its end is reissued by a plain rerun."""

GeneralName = x509.DNSName | x509.IPAddress
KeyPair = tuple[x509.Certificate, ec.EllipticCurvePrivateKey]


@dataclass(frozen=True, slots=True)
class TlsPaths:
    """Where ``provision tls`` writes (file names Mosquitto's config refers to)."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def broker_cert(self) -> Path:
        return self.directory / "broker.crt"

    @property
    def broker_key(self) -> Path:
        return self.directory / "broker.key"


def general_names(hosts: list[str]) -> list[GeneralName]:
    """Subject alternative names: an IP address where the host is one, else a DNS name."""
    if not hosts:
        raise ConfigError("the broker certificate needs at least one --host")
    names: list[GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def provision_tls(
    paths: TlsPaths,
    hosts: list[str],
    *,
    ca_files: tuple[Path, Path] | None = None,
    rotate: bool = False,
    key_group: int | None = None,
) -> list[Step]:
    """Make sure a CA and a broker certificate for ``hosts`` exist in ``paths``."""
    names = general_names(hosts)
    if ca_files is not None:
        ca_cert, ca_key = _load_pair(*ca_files)
        steps = [_write_cert(paths.ca_cert, ca_cert, "CA certificate (given)")]
    else:
        ca_cert, ca_key, steps = _own_ca(paths)
    current = _load_optional_pair(paths.broker_cert, paths.broker_key)
    if current is not None and not rotate and _still_good(current[0], ca_cert, names):
        steps += [
            Step("unchanged", "broker certificate", str(paths.broker_cert)),
            _fix_key_mode(paths.broker_key, current[1], key_group),
        ]
        return steps
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _issue(names, key, ca_cert, ca_key)
    steps += [
        _write_key(paths.broker_key, key, "broker key", key_group),
        _write_cert(paths.broker_cert, cert, "broker certificate"),
    ]
    return steps


def _own_ca(paths: TlsPaths) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey, list[Step]]:
    existing = _load_optional_pair(paths.ca_cert, paths.ca_key)
    if existing is not None:
        cert, key = existing
        return cert, key, [Step("unchanged", "CA certificate and key", str(paths.ca_cert))]
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Leaksense broker CA")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=CA_VALIDITY_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    steps = [
        _write_key(paths.ca_key, key, "CA key", None),
        _write_cert(paths.ca_cert, cert, "CA certificate"),
    ]
    return cert, key, steps


def _issue(
    names: list[GeneralName],
    key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
) -> x509.Certificate:
    now = datetime.now(UTC)
    common_name = str(names[0].value)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=BROKER_VALIDITY_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _still_good(
    cert: x509.Certificate, ca_cert: x509.Certificate, names: list[GeneralName]
) -> bool:
    """Signed by this CA, for exactly these names, and not about to expire."""
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    try:
        current = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    renew_at = datetime.now(UTC) + timedelta(days=RENEW_BEFORE_DAYS)
    return set(current) == set(names) and cert.not_valid_after_utc > renew_at


def _load_pair(cert_path: Path, key_path: Path) -> KeyPair:
    pair = _load_optional_pair(cert_path, key_path)
    if pair is None:
        raise ConfigError(f"CA files not found: {cert_path}, {key_path}")
    return pair


def _load_optional_pair(cert_path: Path, key_path: Path) -> KeyPair | None:
    """The certificate and its key; None if both are absent; an error if half or bad."""
    cert_pem, key_pem = read_text(cert_path), read_text(key_path)
    if cert_pem is None and key_pem is None:
        return None
    if cert_pem is None or key_pem is None:
        missing = cert_path if cert_pem is None else key_path
        raise ConfigError(f"{missing} is missing while its pair exists: restore it or remove both")
    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode("ascii"))
        key = serialization.load_pem_private_key(key_pem.encode("ascii"), password=None)
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        raise ConfigError(f"cannot load {cert_path} / {key_path}: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise ConfigError(f"{key_path} is not the EC private key of {cert_path}")
    return cert, key


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey, what: str, group: int | None) -> Step:
    mode = 0o640 if group is not None else SECRET_MODE
    return write_file(path, _key_pem(key), mode=mode, what=what, group=group)


def _fix_key_mode(path: Path, key: ec.EllipticCurvePrivateKey, group: int | None) -> Step:
    return _write_key(path, key, "broker key", group)


def _write_cert(path: Path, cert: x509.Certificate, what: str) -> Step:
    pem = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
    return write_file(path, pem, mode=PUBLIC_MODE, what=what)
