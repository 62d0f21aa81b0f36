"""The model artifact: one self-describing `model.json`, sealed by a digest and optionally signed.

Format: a JSON object with `format`, `version` (unix seconds), `created_at`, `model` (xgboost's
JSON model), `features` (the FeatureSpec), `metrics`, `training`, `feature_stats`, `card`,
`digest` and `signature`. The digest is `sha256:` + hex SHA-256 of the canonical encoding of
every other field except `signature` (JSON, keys sorted, no whitespace, UTF-8, no NaN).
The signature signs `leadops-artifact-v1\\n<digest>` with ed25519 (PEM private key) or
HMAC-SHA256 (shared secret), key material from env or a file, never logged.

Loading verifies the digest and, when keys are given, the signature; any mismatch is an
`ArtifactError` with a CamelCase `.reason`. Writing is atomic (temp file, fsync, rename), so a
failed run leaves the previous file untouched and no partial one. Pure: stdlib, pydantic,
cryptography; the operator uses it without numpy or xgboost.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import tempfile
import zlib
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from leadops.contract.card import ModelCard
from leadops.contract.drift import FeatureStats
from leadops.contract.features import FeatureSpec
from leadops.reasoned import ReasonedError

logger = logging.getLogger(__name__)

FORMAT: Final = "leadops.model/v1"
MAX_ARTIFACT_BYTES: Final = 256 * 1024 * 1024
# What a registry ConfigMap (900 KiB of gzip) may unpack to: real artifacts are a few MiB;
# the bound keeps a gzip bomb from costing more memory than this.
MAX_UNPACKED_BYTES: Final = 16 * 1024 * 1024
_UNPACK_CHUNK: Final = 64 * 1024
SIGNED_PREFIX: Final = b"leadops-artifact-v1\n"
MIN_HMAC_SECRET: Final = 16
ENV_SIGNING_KEY: Final = "LEADOPS_SIGNING_KEY"
ENV_SIGNING_KEY_FILE: Final = "LEADOPS_SIGNING_KEY_FILE"
ENV_VERIFY_KEY: Final = "LEADOPS_VERIFY_KEY"
ENV_VERIFY_KEY_FILE: Final = "LEADOPS_VERIFY_KEY_FILE"
# The digest the operator validated; the scorer (and its init container) serve nothing else.
ENV_MODEL_DIGEST: Final = "LEADOPS_MODEL_DIGEST"


class ArtifactError(ReasonedError):
    """A model artifact that must not be used; `.reason` is a CamelCase constant."""

    CORRUPT: Final = "CorruptArtifact"
    UNSUPPORTED: Final = "UnsupportedFormat"
    DIGEST_MISMATCH: Final = "DigestMismatch"
    SIGNATURE_INVALID: Final = "SignatureInvalid"
    SIGNATURE_MISSING: Final = "SignatureMissing"
    TOO_LARGE: Final = "ArtifactTooLarge"
    NOT_FOUND: Final = "ArtifactNotFound"
    KEY_INVALID: Final = "SigningKeyInvalid"


class Metrics(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    auc: float = Field(ge=0.0, le=1.0, description="ROC AUC on the hold-out")
    auc_ci95: tuple[float, float] = Field(description="95 % bootstrap interval of the AUC")
    logloss: float = Field(ge=0.0)
    n_train: int = Field(ge=0)
    n_test: int = Field(ge=0)
    positive_rate: float = Field(ge=0.0, le=1.0, description="share of converted training rows")


class TrainingInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    window_start: datetime | None = None
    window_end: datetime | None = None
    data_digest: str = Field(description="sha256: of the input bytes as read")
    source: str = Field(description="input path or URL (no credentials)")
    label: str
    holdout: Literal["time", "stratified"]
    timestamp_column: str | None = None
    rows_read: int = Field(ge=0)
    rows_without_label: int = Field(default=0, ge=0)
    params: dict[str, Any] = Field(default_factory=dict)
    best_iteration: int | None = None


class Calibration(BaseModel):
    """Score -> conversion probability on the hold-out (isotonic knots), for estimating AUC
    before outcomes arrive (`leadops.stats.cbpe`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    scores: list[float] = Field(description="knot scores, ascending")
    probabilities: list[float] = Field(description="conversion probability at each knot")

    @model_validator(mode="after")
    def _knots(self) -> Calibration:
        if not self.scores or len(self.scores) != len(self.probabilities):
            raise ValueError("calibration needs as many probabilities as scores, at least one")
        if self.scores != sorted(self.scores) or self.probabilities != sorted(self.probabilities):
            raise ValueError("calibration knots must ascend")
        return self


class Signature(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    algorithm: Literal["ed25519", "hmac-sha256"]
    key_id: str | None = Field(default=None, description="ed25519 public key fingerprint")
    value: str = Field(description="base64 signature over leadops-artifact-v1\\n<digest>")


class Artifact(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    format: Literal["leadops.model/v1"] = FORMAT
    version: int = Field(gt=0, description="unix seconds at training time")
    created_at: datetime
    model: dict[str, Any] = Field(description="xgboost JSON model")
    features: FeatureSpec
    metrics: Metrics
    training: TrainingInfo
    feature_stats: FeatureStats
    card: ModelCard
    calibration: Calibration | None = None
    digest: str = ""
    signature: Signature | None = None


# --- keys -------------------------------------------------------------------------------


def _fingerprint(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True, repr=False)
class SigningKey:
    """A key to sign artifacts with. repr never shows the material."""

    algorithm: Literal["ed25519", "hmac-sha256"]
    _secret: bytes = b""
    _private: Ed25519PrivateKey | None = None

    def __repr__(self) -> str:
        return f"SigningKey({self.algorithm})"

    @classmethod
    def from_bytes(cls, material: bytes) -> SigningKey:
        """A PEM ed25519 private key, or else an HMAC secret of at least 16 bytes."""
        material = material.strip()
        if material.startswith(b"-----BEGIN"):
            try:
                key = serialization.load_pem_private_key(material, password=None)
            except (ValueError, TypeError) as exc:
                raise ArtifactError(
                    ArtifactError.KEY_INVALID, "signing key is not a PEM key"
                ) from exc
            if not isinstance(key, Ed25519PrivateKey):
                raise ArtifactError(ArtifactError.KEY_INVALID, "signing key is not ed25519")
            return cls("ed25519", _private=key)
        if len(material) < MIN_HMAC_SECRET:
            raise ArtifactError(
                ArtifactError.KEY_INVALID, f"HMAC secret shorter than {MIN_HMAC_SECRET} bytes"
            )
        return cls("hmac-sha256", _secret=material)

    def sign(self, digest: str) -> Signature:
        message = SIGNED_PREFIX + digest.encode()
        if self._private is not None:
            value = self._private.sign(message)
            key_id = _fingerprint(self._private.public_key())
            return Signature(algorithm="ed25519", key_id=key_id, value=_b64(value))
        value = hmac.new(self._secret, message, hashlib.sha256).digest()
        return Signature(algorithm="hmac-sha256", value=_b64(value))


@dataclass(frozen=True, repr=False)
class VerifyKeys:
    """Keys an artifact's signature may verify against; when given, a signature is required."""

    hmac_secrets: tuple[bytes, ...] = ()
    ed25519: tuple[Ed25519PublicKey, ...] = ()

    def __repr__(self) -> str:
        return f"VerifyKeys(hmac={len(self.hmac_secrets)}, ed25519={len(self.ed25519)})"

    @classmethod
    def from_bytes(cls, material: bytes) -> VerifyKeys:
        """A PEM ed25519 public (or private) key, or else an HMAC secret."""
        material = material.strip()
        if material.startswith(b"-----BEGIN") and b"PRIVATE" in material:
            key = SigningKey.from_bytes(material)
            assert key._private is not None
            return cls(ed25519=(key._private.public_key(),))
        if material.startswith(b"-----BEGIN"):
            try:
                public = serialization.load_pem_public_key(material)
            except (ValueError, TypeError) as exc:
                raise ArtifactError(
                    ArtifactError.KEY_INVALID, "verify key is not a PEM key"
                ) from exc
            if not isinstance(public, Ed25519PublicKey):
                raise ArtifactError(ArtifactError.KEY_INVALID, "verify key is not ed25519")
            return cls(ed25519=(public,))
        if len(material) < MIN_HMAC_SECRET:
            raise ArtifactError(
                ArtifactError.KEY_INVALID, f"HMAC secret shorter than {MIN_HMAC_SECRET} bytes"
            )
        return cls(hmac_secrets=(material,))

    def verify(self, digest: str, signature: Signature) -> None:
        message = SIGNED_PREFIX + digest.encode()
        try:
            given = base64.b64decode(signature.value, validate=True)
        except ValueError as exc:
            raise ArtifactError(ArtifactError.SIGNATURE_INVALID, "signature is not base64") from exc
        if signature.algorithm == "hmac-sha256":
            for secret in self.hmac_secrets:
                expected = hmac.new(secret, message, hashlib.sha256).digest()
                if hmac.compare_digest(expected, given):
                    return
        else:
            for public in self.ed25519:
                with suppress(InvalidSignature):
                    public.verify(given, message)
                    return
        raise ArtifactError(
            ArtifactError.SIGNATURE_INVALID,
            f"{signature.algorithm} signature does not verify with the configured key",
        )


def _key_material(env: Mapping[str, str], value_var: str, file_var: str) -> bytes | None:
    if env.get(value_var):
        return env[value_var].encode()
    if env.get(file_var):
        try:
            return Path(env[file_var]).read_bytes()
        except OSError as exc:
            raise ArtifactError(
                ArtifactError.KEY_INVALID, f"cannot read key file from {file_var}: {exc.strerror}"
            ) from exc
    return None


def signing_key_from_env(env: Mapping[str, str] | None = None) -> SigningKey | None:
    """LEADOPS_SIGNING_KEY (the material) or LEADOPS_SIGNING_KEY_FILE (a path); None if neither."""
    material = _key_material(
        os.environ if env is None else env, ENV_SIGNING_KEY, ENV_SIGNING_KEY_FILE
    )
    return None if material is None else SigningKey.from_bytes(material)


def verify_keys_from_env(env: Mapping[str, str] | None = None) -> VerifyKeys | None:
    """LEADOPS_VERIFY_KEY or LEADOPS_VERIFY_KEY_FILE; None if neither (digest-only checks)."""
    material = _key_material(
        os.environ if env is None else env, ENV_VERIFY_KEY, ENV_VERIFY_KEY_FILE
    )
    return None if material is None else VerifyKeys.from_bytes(material)


# --- digest, seal, write, load ------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def canonical_bytes(payload: Mapping[str, Any]) -> bytes:
    """The canonical encoding the digest covers."""
    return json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def compute_digest(document: Mapping[str, Any]) -> str:
    """`sha256:<hex>` over every field of a JSON document except `digest` and `signature`."""
    payload = {k: v for k, v in document.items() if k not in ("digest", "signature")}
    return "sha256:" + hashlib.sha256(canonical_bytes(payload)).hexdigest()


def seal(artifact: Artifact, *, key: SigningKey | None = None) -> Artifact:
    """The artifact with its digest set and, given a key, signed."""
    digest = compute_digest(artifact.model_dump(mode="json"))
    signature = None if key is None else key.sign(digest)
    return artifact.model_copy(update={"digest": digest, "signature": signature})


def dumps(artifact: Artifact) -> bytes:
    """The file bytes of a sealed artifact; refuses one whose digest does not match."""
    document = artifact.model_dump(mode="json")
    if document["digest"] != compute_digest(document):
        raise ArtifactError(ArtifactError.DIGEST_MISMATCH, "artifact not sealed; call seal() first")
    return canonical_bytes(document) + b"\n"


def write_artifact(artifact: Artifact, path: str | os.PathLike[str]) -> None:
    """Write atomically: temp file in the same directory, fsync, rename over `path`."""
    data = dumps(artifact)
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with suppress(OSError):  # make the rename durable; not every filesystem allows this
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    logger.info("Wrote model artifact version %s to %s", artifact.version, target)


def _read(source: str | os.PathLike[str] | bytes) -> bytes:
    if isinstance(source, bytes):
        data = source
    else:
        path = Path(source)
        try:
            size = path.stat().st_size
            if size > MAX_ARTIFACT_BYTES:
                raise ArtifactError(
                    ArtifactError.TOO_LARGE, f"{path} is {size} bytes, over {MAX_ARTIFACT_BYTES}"
                )
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise ArtifactError(ArtifactError.NOT_FOUND, f"no artifact at {path}") from exc
        except IsADirectoryError as exc:
            raise ArtifactError(ArtifactError.NOT_FOUND, f"{path} is a directory") from exc
    if len(data) > MAX_ARTIFACT_BYTES:
        raise ArtifactError(ArtifactError.TOO_LARGE, f"artifact over {MAX_ARTIFACT_BYTES} bytes")
    return data


def read_bytes(source: str | os.PathLike[str]) -> bytes:
    """The artifact file's bytes, bounded (ArtifactTooLarge) and ArtifactNotFound when absent."""
    return _read(source)


def gunzip_bounded(packed: bytes, *, limit: int = MAX_UNPACKED_BYTES) -> bytes:
    """Decompress gzip as a stream, refusing (ArtifactTooLarge) before holding over `limit`."""
    stream = zlib.decompressobj(wbits=31)  # 31: gzip header and trailer
    out = bytearray()
    pending = packed
    try:
        while pending:
            # Never more than one chunk past what is kept: a bomb stops at the limit.
            out += stream.decompress(pending, _UNPACK_CHUNK)
            if len(out) > limit:
                raise ArtifactError(
                    ArtifactError.TOO_LARGE, f"gzip data unpacks to over {limit} bytes"
                )
            pending = stream.unconsumed_tail
        out += stream.flush(_UNPACK_CHUNK)
    except zlib.error as exc:
        raise ArtifactError(ArtifactError.CORRUPT, f"not gzip data: {exc}") from exc
    if len(out) > limit:
        raise ArtifactError(ArtifactError.TOO_LARGE, f"gzip data unpacks to over {limit} bytes")
    if not stream.eof:
        raise ArtifactError(ArtifactError.CORRUPT, "gzip data is truncated")
    return bytes(out)


def check_digest(artifact: Artifact, expected: str) -> None:
    """Refuse an artifact that is not the one validated (`expected` is its `sha256:` digest)."""
    if not hmac.compare_digest(artifact.digest, expected):
        raise ArtifactError(
            ArtifactError.DIGEST_MISMATCH,
            f"artifact digest {artifact.digest[:23]} is not the validated {expected[:23]}",
        )


def load_artifact(
    source: str | os.PathLike[str] | bytes,
    *,
    keys: VerifyKeys | None = None,
    expect_digest: str | None = None,
) -> Artifact:
    """Parse and verify an artifact: digest always, signature when `keys` is given, and that
    it is exactly the validated artifact when `expect_digest` is given."""
    data = _read(source)
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(ArtifactError.CORRUPT, f"not JSON: {exc}") from exc
    except RecursionError:  # nested deeper than any model; a bad file, not a server error
        raise ArtifactError(ArtifactError.CORRUPT, "JSON nested too deeply") from None
    if not isinstance(document, dict):
        raise ArtifactError(ArtifactError.CORRUPT, "not a JSON object")
    if document.get("format") != FORMAT:
        raise ArtifactError(
            ArtifactError.UNSUPPORTED,
            f"format {str(document.get('format'))[:60]!r}; this build reads {FORMAT!r}",
        )
    try:
        digest = compute_digest(document)
    except ValueError as exc:  # NaN/Infinity in the document: never produced by seal()
        raise ArtifactError(ArtifactError.CORRUPT, f"not canonical JSON: {exc}") from exc
    except RecursionError:
        raise ArtifactError(ArtifactError.CORRUPT, "JSON nested too deeply") from None
    if not hmac.compare_digest(str(document.get("digest", "")), digest):
        raise ArtifactError(
            ArtifactError.DIGEST_MISMATCH,
            "content does not match its digest: the file was modified or damaged",
        )
    try:
        artifact = Artifact.model_validate(document)
    except RecursionError:
        raise ArtifactError(ArtifactError.CORRUPT, "JSON nested too deeply") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ArtifactError(
            ArtifactError.CORRUPT, f"invalid field {where}: {first['msg']}"
        ) from exc
    if keys is not None:
        if artifact.signature is None:
            raise ArtifactError(
                ArtifactError.SIGNATURE_MISSING,
                "a signing key is configured but the artifact is unsigned",
            )
        keys.verify(artifact.digest, artifact.signature)
    if expect_digest:
        check_digest(artifact, expect_digest)
    return artifact
