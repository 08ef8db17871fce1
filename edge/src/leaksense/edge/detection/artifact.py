"""Model artifacts: what a gateway needs to detect on one sensor or DMA, as signed JSON.

An artifact is data, never code: a demand profile, noise levels, the night-flow
baseline and the detection thresholds. The server signs the canonical JSON with
Ed25519; the gateway checks the checksum and the signature against the server's
public key before using it. No pickle crosses a machine.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from leaksense.core.errors import InvalidInput
from leaksense.core.messages import UtcDatetime

if TYPE_CHECKING:  # cryptography (~6 MiB) is imported only where a key is used
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

log = logging.getLogger(__name__)
FORMAT = "leaksense.model/1"
MAX_ARTIFACT_BYTES = 16_384
Floats = list[Annotated[float, Field(allow_inf_nan=False)]]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DetectionParams(_Frozen):
    """Thresholds, chosen by the evaluation (docs/detection.md) and overridable per sensor."""

    burst_k: float = 2.5
    """CUSUM allowance on standardised residuals (in σ)."""
    burst_h: float = 7.0
    """CUSUM decision threshold (in σ)."""
    burst_min_fraction: float = 0.1
    """A burst must add at least this share of the series' mean flow."""
    burst_z_clip: float = 8.0
    """Cap on one residual's contribution, so a lone spike cannot open a burst."""
    burst_max_h: float = 24.0
    """A burst alert still open after this long, once a whole night it was open for
    has been judged (or after twice this long), goes on as a lasting leak."""
    burst_night_share: float = 0.3
    """A burst open over a whole night window whose night shows under this share of the
    flow it was alerted with is closed as not seen (0: never): a burst pipe leaks at
    night too, and more (pressure). Not a half: the first estimate of the smallest
    bursts found can be twice their flow (docs/detection.md, ninth round)."""
    burst_window_n: Annotated[int, Field(ge=1, le=12)] = 3
    """Readings in the short-window burst test (window.py)."""
    burst_window_z: float = 11.5
    """The short-window test alarms when its readings' z add up to this (0: off)."""
    burst_window_min_z: float = 1.5
    """… and each of them is at least this many σ above expectation."""
    burst_step_z: float = 5.0
    """The step test (step.py) alarms when the last readings' mean excess is this many
    of its σ above the readings' just before them (0: off; tenth round)."""
    burst_step_n: Annotated[int, Field(ge=1, le=6)] = 2
    """Readings in the step test's recent mean."""
    burst_step_before_n: Annotated[int, Field(ge=1, le=24)] = 6
    """Readings in the step test's reference mean (one reading before the recent ones
    is skipped: a burst may have started in it)."""
    burst_memory_days: int = 3
    """The burst CUSUM expects an excess that came back at this hour on any of the last
    days (watering evenings, irrigation nights); 0 switches this off."""
    burst_memory_z: float = 2.0
    """Only the part of a past quarter-hour's mean excess above this many σ is kept."""
    level_half_life_h: float = 6.0
    """How fast the expected level follows normal change (chosen by the eighth round's
    sweep over 1.5, 3 and 6 h: docs/detection.md)."""
    level_freeze_z: float = 2.0
    """Readings this far above expectation do not move the level (a burst is not learned)."""
    refit_every_days: float = 7.0
    """A gateway refits each series on its recent normal history this often."""
    night_k: float = 1.0
    night_h: float = 2.0
    night_start_hour: int = 1
    night_end_hour: int = 5
    night_jump_z: float = 0.0
    """A night this many night σ above an open lasting leak's flow is a new leak: the
    open alert closes and a new one opens (0: never; the open alert only updates)."""
    night_baseline_nights: int = 14
    night_min_coverage: float = 0.6
    night_sigma_floor_fraction: float = 0.02
    """The night σ is never taken under this share of the night baseline."""
    morning_start_hour: int = 5
    morning_end_hour: int = 9
    """The morning window whose demand level explains part of the night's (the same
    day's weather and occupancy); its night is judged when it ends (end ≤ start: off)."""
    morning_sigma_floor_fraction: float = 0.015
    """The night σ once the morning has explained its part, at least this share."""
    morning_min_gain: float = 0.2
    """The morning is used only where it cuts the night σ by at least this share."""
    night_alone_first: bool = True
    """A night that alarms judged alone (with the plain σ) alarms when its window
    closes, without waiting for its morning."""
    flatline_s: float = 4 * 3600.0
    gap_s: float = 3600.0
    spike_z: float = 12.0
    continuous_flow_h: float = 24.0
    zero_flow_m3h: float = 1e-3
    max_flow_m3h: float = 100_000.0
    min_flow_m3h: float = -0.01
    """Below this a meter's reading, or a DMA's net inflow over an hour, is impossible."""


class ModelArtifact(_Frozen):
    """Expected behaviour of one flow series (a meter or a DMA's net inflow)."""

    format: Literal["leaksense.model/1"] = "leaksense.model/1"
    series_id: str
    kind: Literal["sensor", "dma"] = "sensor"
    trainer: str
    created_at: UtcDatetime
    trained_from: UtcDatetime
    trained_to: UtcDatetime
    timezone: str = "Europe/Paris"
    interval_s: Annotated[float, Field(gt=0)]
    profile_m3h: list[Floats]
    """Expected flow by day type (weekday, Saturday, Sunday/holiday) and quarter-hour."""
    sigma_m3h: Floats
    """Residual noise (robust σ) by local hour."""
    step_sigma_m3h: Floats | None = None
    """σ of the step test's statistic by local hour (step.py); None: no step test."""
    night_baseline_m3h: float
    night_alt_baseline_m3h: Annotated[float, Field(allow_inf_nan=False)] | None = None
    """A second night level far from the baseline, when the nights fall in two groups
    (farms irrigating on some nights only): each night is judged against the nearer."""
    night_sigma_m3h: float
    night_day_factors: Floats = [1.0, 1.0, 1.0]
    """Night level by day type relative to the baseline (weekday, Saturday, Sunday)."""
    morning_m3h: Floats | None = None
    """Usual mean flow of the morning window by day type, when the morning's level
    explains part of the night's (``morning.py``); None: nights judged on their own."""
    morning_slope_m3h: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    """Night flow (per day-type factor) added per unit of relative morning excess."""
    morning_sigma_m3h: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    """Night σ once the morning's part is removed."""
    mean_flow_m3h: float = 0.0
    zero_fraction: Annotated[float, Field(ge=0, le=1)] = 0.0
    """Share of readings at rest: an intermittent series (a customer's meter) gets no
    burst CUSUM, only the night and continuous-flow checks."""
    peak_flow_m3h: Annotated[float, Field(ge=0)] = 0.0
    """99.5th percentile of the training readings: a lone reading far above it is a
    spike (a household's bath is not; 0 in artifacts older than this field)."""
    params: DetectionParams = DetectionParams()

    @model_validator(mode="after")
    def _shapes(self) -> ModelArtifact:
        if len(self.profile_m3h) != 3 or any(len(p) != 96 for p in self.profile_m3h):
            raise ValueError("profile_m3h must be 3 day types × 96 quarter-hours")
        if len(self.sigma_m3h) != 24 or min(self.sigma_m3h) <= 0:
            raise ValueError("sigma_m3h must be 24 positive values")
        if len(self.night_day_factors) != 3 or min(self.night_day_factors) <= 0:
            raise ValueError("night_day_factors must be 3 positive values")
        if self.night_sigma_m3h <= 0:
            raise ValueError("night_sigma_m3h must be positive")
        morning = self.morning_m3h
        if morning is not None and (len(morning) != 3 or min(morning) <= 0):
            raise ValueError("morning_m3h must be 3 positive values")
        return self


class SignedArtifact(_Frozen):
    """An artifact with its checksum and the server's signature."""

    artifact: ModelArtifact
    sha256: str
    signature: str | None = None
    key_id: str | None = None


def canonical_bytes(artifact: ModelArtifact) -> bytes:
    """The exact bytes that are hashed and signed."""
    return _canonical(artifact.model_dump(mode="json"))


def checksum(artifact: ModelArtifact) -> str:
    return hashlib.sha256(canonical_bytes(artifact)).hexdigest()


def key_id(public_key: Ed25519PublicKey) -> str:
    """Short fingerprint naming a signing key."""
    from cryptography.hazmat.primitives.serialization import (  # noqa: PLC0415 - see TYPE_CHECKING
        Encoding,
        PublicFormat,
    )

    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_public_key(text: str) -> Ed25519PublicKey:
    """A public key from its base64 raw form (as ``leaksense models keygen`` prints it)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # noqa: PLC0415
        Ed25519PublicKey,
    )

    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text.strip(), validate=True))
    except ValueError as exc:
        raise InvalidInput(f"not an Ed25519 public key (base64 of 32 bytes): {exc}") from exc


def parse_signed(data: bytes | str, public_key: Ed25519PublicKey | None) -> ModelArtifact:
    """Check the checksum and (when a key is given) the signature, then validate.

    Both are checked on the artifact as received, so an artifact from a newer trainer
    verifies here too; the fields this gateway does not know are then ignored (and
    logged). A newer trainer may only add fields that leave the artifact valid without
    them; any other change is a new ``FORMAT``, which is refused.
    """
    if len(data) > MAX_ARTIFACT_BYTES:
        raise InvalidInput(f"model artifact of {len(data)} bytes exceeds {MAX_ARTIFACT_BYTES}")
    try:
        signed = _Envelope.model_validate_json(data)
    except ValidationError as exc:
        raise InvalidInput(f"invalid model artifact: {_first_error(exc)}") from exc
    raw = signed.artifact
    series_id = str(raw.get("series_id", "?"))
    payload = _canonical(raw)
    if hashlib.sha256(payload).hexdigest() != signed.sha256:
        raise InvalidInput(f"model artifact {series_id}: checksum mismatch")
    if public_key is not None:
        from cryptography.exceptions import InvalidSignature  # noqa: PLC0415

        if signed.signature is None:
            raise InvalidInput(f"model artifact {series_id} is not signed")
        try:
            public_key.verify(base64.b64decode(signed.signature), payload)
        except (InvalidSignature, ValueError) as exc:
            raise InvalidInput(f"model artifact {series_id}: bad signature") from exc
    known, ignored = _known_fields(raw)
    try:
        artifact = ModelArtifact.model_validate(known)
    except ValidationError as exc:
        raise InvalidInput(f"invalid model artifact: artifact.{_first_error(exc)}") from exc
    if ignored:
        log.warning(
            "model artifact %s: fields from a newer trainer ignored: %s", series_id, ignored
        )
    return artifact


class _Envelope(_Frozen):
    """A signed artifact as received: the artifact is checked before it is validated."""

    artifact: dict[str, Any]
    sha256: str
    signature: str | None = None
    key_id: str | None = None


def _canonical(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def _known_fields(raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The artifact without the fields (its own or its params') this version lacks."""
    known = {k: v for k, v in raw.items() if k in ModelArtifact.model_fields}
    ignored = sorted(set(raw) - set(known))
    params = raw.get("params")
    if isinstance(params, dict):
        known["params"] = {k: v for k, v in params.items() if k in DetectionParams.model_fields}
        ignored += sorted(f"params.{k}" for k in set(params) - set(known["params"]))
    return known, ignored


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    return ".".join(str(p) for p in first["loc"]) + f": {first['msg']}"


def unsigned(artifact: ModelArtifact) -> SignedArtifact:
    """Wrap a locally fitted artifact (gateway warm-up): checksummed, not signed."""
    return SignedArtifact(artifact=artifact, sha256=checksum(artifact))


def round_floats(values: Any, digits: int = 5) -> Any:
    """Round nested float lists to keep artifacts small (5 significant digits)."""
    if isinstance(values, list):
        return [round_floats(v, digits) for v in values]
    if isinstance(values, float) and values != 0.0:
        return float(f"{values:.{digits}g}")
    return values
