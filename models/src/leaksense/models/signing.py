"""Ed25519 signing of model artifacts, on the training machine only.

Why Ed25519 rather than an HMAC: gateways hold only the *public* key, so a stolen
Raspberry Pi cannot forge models for other sites, and the API server, which only
stores and serves signed JSON, never holds the private key either. Keys are small
(32 bytes, one base64 line in the gateway config) and verification is fast.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from leaksense.core.errors import ConfigError, InvalidInput
from leaksense.edge.detection.artifact import (
    MAX_ARTIFACT_BYTES,
    ModelArtifact,
    SignedArtifact,
    canonical_bytes,
    checksum,
    key_id,
)
from leaksense.server.settings import ServerSettings

KEY_FILE_MODE = 0o600
DEV_KEY_NAME = "model-signing-key.pem"


def public_key_text(private_key: Ed25519PrivateKey) -> str:
    """The public half as gateways configure it: base64 of the 32 raw bytes."""
    raw = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def generate_keypair(path: Path) -> str:
    """Write a new private key (PEM, PKCS#8, mode 0600) to ``path``; return the public key.

    An existing file is never overwritten: replacing the key would make every
    gateway refuse the next models until its config is updated.
    """
    private_key = Ed25519PrivateKey.generate()
    pem = private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    except FileExistsError as exc:
        raise ConfigError(f"{path} already exists: refusing to overwrite a signing key") from exc
    except OSError as exc:
        raise ConfigError(f"cannot create signing key file {path}: {exc}") from exc
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), KEY_FILE_MODE)  # whatever the umask
        out.write(pem)
        out.flush()
        os.fsync(out.fileno())
    return public_key_text(private_key)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in a PEM file written by :func:`generate_keypair`."""
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise ConfigError(f"cannot read signing key {path}: {exc}") from exc
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigError(f"{path} is not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def sign(artifact: ModelArtifact, private_key: Ed25519PrivateKey) -> SignedArtifact:
    """Checksum and sign the canonical JSON; refuse what a gateway would refuse by size."""
    signature = private_key.sign(canonical_bytes(artifact))
    signed = SignedArtifact(
        artifact=artifact,
        sha256=checksum(artifact),
        signature=base64.b64encode(signature).decode("ascii"),
        key_id=key_id(private_key.public_key()),
    )
    size = len(signed_json(signed))
    if size > MAX_ARTIFACT_BYTES:
        raise InvalidInput(
            f"signed artifact {artifact.series_id} is {size} bytes, over {MAX_ARTIFACT_BYTES}"
        )
    return signed


def signed_json(signed: SignedArtifact) -> bytes:
    """The bytes stored and served (compact JSON)."""
    return signed.model_dump_json().encode("utf-8")


def signing_key(settings: ServerSettings) -> tuple[Ed25519PrivateKey, str | None]:
    """The private key to sign with, and a note when a development key was created.

    Production needs ``LEAKSENSE_SERVER_MODEL_SIGNING_KEY_FILE``; development falls
    back to a key in ``data_dir``, created on first use.
    """
    if settings.model_signing_key_file is not None:
        return load_private_key(settings.model_signing_key_file), None
    if settings.mode == "production":
        raise ConfigError(
            "production mode: set LEAKSENSE_SERVER_MODEL_SIGNING_KEY_FILE to train models "
            "(create one with `leaksense models keygen --out PATH`)"
        )
    path: Path = settings.data_dir / DEV_KEY_NAME
    if path.exists():
        return load_private_key(path), None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    public = generate_keypair(path)
    return load_private_key(path), f"created development signing key {path}; public key {public}"
