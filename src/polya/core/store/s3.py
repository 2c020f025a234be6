"""An artifact store in an S3 bucket (AWS, MinIO, Ceph, or any S3-protocol server).

The endpoint and credentials come from the environment (see :meth:`S3Endpoint.from_env`). A PUT
is atomic on S3 (the object appears whole or not at all), so writes need no temp objects.
Every SDK or network failure becomes a :class:`StoreError` naming the object's ``s3://`` uri or
the endpoint and what to check.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import io
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, TypeVar
from urllib.parse import urlsplit

import certifi
import urllib3
from minio import Minio
from minio.error import MinioException, S3Error

from polya.core.errors import StoreError
from polya.core.store.base import ArtifactStore, is_temp_path, join_path, normalize_path
from polya.core.store.local import atomic_file

logger = logging.getLogger(__name__)
T = TypeVar("T")

ENDPOINT_ENV_VARS = ("POLYA_S3_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "MINIO_ENDPOINT")
"""Environment variables read for the endpoint, first set wins."""

DEFAULT_ENDPOINT = "s3.amazonaws.com"

CONNECT_TIMEOUT_S = 5.0
"""Seconds to wait for a TCP connection; a dead endpoint fails in seconds, not minutes."""

READ_TIMEOUT_S = 300.0
"""Seconds to wait for a response chunk (large objects stream in many chunks)."""

RETRIES = 3
"""Retries for failed requests and 5xx answers, with short exponential backoff."""

CONNECT_RETRIES = 2
"""Of those, retries of a failed connection (so an unreachable host costs about 15 s at most)."""

OUTAGE_ENV = "POLYA_S3_OUTAGE_S"
OUTAGE_S = 120.0
"""Once a store has reached its endpoint, an endpoint that stops answering (a restarted MinIO pod)
is retried with backoff for this long ($POLYA_S3_OUTAGE_S) before the operation fails; an endpoint
never reached fails at once."""

_CHUNK_BYTES = 1 << 20
_MISSING_OBJECT_CODES = {"NoSuchKey", "NoSuchObject", "ResourceNotFound"}
_CREDENTIAL_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"}
_ENDPOINT_HINT = (
    "check that the server is running and that POLYA_S3_ENDPOINT (or AWS_ENDPOINT_URL_S3, "
    "AWS_ENDPOINT_URL, MINIO_ENDPOINT) points at it, e.g. http://localhost:9000"
)
_CREDENTIALS_HINT = (
    "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or MINIO_ACCESS_KEY / MINIO_SECRET_KEY), "
    "AWS_SESSION_TOKEN for temporary credentials, and AWS_REGION"
)


@dataclass(frozen=True)
class S3Endpoint:
    """Where the S3 server is: ``host[:port]``, TLS or not, and which variable said so."""

    host: str
    secure: bool
    source: str

    @property
    def url(self) -> str:
        """The endpoint as a URL, for messages (``http://localhost:9000``)."""
        return f"{'https' if self.secure else 'http'}://{self.host}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> S3Endpoint:
        """Read the endpoint from the first set variable of :data:`ENDPOINT_ENV_VARS`.

        ``http://host:port`` and ``https://host`` pick TLS from the scheme; a bare ``host:port``
        uses TLS unless ``POLYA_S3_INSECURE=1``. With none set, AWS (``s3.amazonaws.com``).
        """
        env = os.environ if env is None else env
        for name in ENDPOINT_ENV_VARS:
            value = env.get(name, "").strip()
            if value:
                return cls.parse(value, source=name, insecure=env.get("POLYA_S3_INSECURE", "") == "1")
        return cls(host=DEFAULT_ENDPOINT, secure=True, source="default")

    @classmethod
    def parse(cls, value: str, *, source: str, insecure: bool = False) -> S3Endpoint:
        """Parse one endpoint value (``http://h:p``, ``https://h`` or bare ``h:p``)."""
        if "://" not in value:
            host, secure = value.rstrip("/"), not insecure
        else:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https"):
                raise StoreError(f"{source}={value!r}: the scheme must be http:// or https:// (or give a bare host:port)")
            if parts.path.strip("/") or parts.query:
                raise StoreError(f"{source}={value!r}: give only scheme://host[:port], without a path")
            host, secure = parts.netloc, parts.scheme == "https"
        if not host:
            raise StoreError(f"{source}={value!r} names no host; expected e.g. http://localhost:9000")
        return cls(host=host, secure=secure, source=source)

    def client(self, env: Mapping[str, str] | None = None) -> Minio:
        """A MinIO SDK client for this endpoint, with credentials and region from ``env``.

        Timeouts and retries are short enough that an unreachable endpoint fails in seconds.
        """
        env = os.environ if env is None else env
        if env.get("AWS_ACCESS_KEY_ID"):
            access_key, secret_key = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
            secret_name = "AWS_SECRET_ACCESS_KEY"
        else:
            access_key, secret_key = env.get("MINIO_ACCESS_KEY"), env.get("MINIO_SECRET_KEY")
            secret_name = "MINIO_SECRET_KEY"
        if access_key and not secret_key:
            raise StoreError(f"an S3 access key is set but {secret_name} is empty; set both or neither")
        http_client = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_S, read=READ_TIMEOUT_S),
            maxsize=10,
            cert_reqs="CERT_REQUIRED",
            ca_certs=env.get("SSL_CERT_FILE") or certifi.where(),
            retries=urllib3.Retry(
                total=RETRIES, connect=CONNECT_RETRIES, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]
            ),
        )
        return Minio(
            self.host,
            access_key=access_key or None,
            secret_key=secret_key or None,
            session_token=env.get("AWS_SESSION_TOKEN") or None,
            secure=self.secure,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
            http_client=http_client,
        )


class S3Unreachable(StoreError):
    """The endpoint did not answer (connection refused, reset, timed out)."""


def _ride_out_outages(method: Callable[..., T]) -> Callable[..., T]:
    """Retry an idempotent store operation while an endpoint that answered before is unreachable, for
    up to :data:`OUTAGE_S`; then fail with a message naming the endpoint and how long it was tried."""

    @functools.wraps(method)
    def wrapper(self: "S3Store", *args: Any, **kwargs: Any) -> T:
        started, delay = time.monotonic(), 1.0
        while True:
            try:
                result = method(self, *args, **kwargs)
                self._reached = True
                return result
            except S3Unreachable as exc:
                window = self.outage_s
                waited = time.monotonic() - started
                if not self._reached or waited >= window:
                    if self._reached:
                        raise StoreError(f"{exc} (retried for {waited:.0f}s, {OUTAGE_ENV}={window:g})") from exc
                    raise
                logger.warning("S3 endpoint %s unreachable (%s); retrying for up to %.0fs more", self.endpoint, exc, window - waited)
                time.sleep(min(delay, max(0.0, window - waited)))
                delay = min(delay * 2, 15.0)

    return wrapper


class S3Store(ArtifactStore):
    """Artifacts under ``s3://bucket/prefix``.

    Without ``client``, the endpoint and credentials come from the environment. The bucket is
    checked on construction: a missing bucket raises :class:`StoreError` unless
    ``create_bucket`` is true, and an unreachable endpoint fails here rather than mid-stage.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        client: Minio | None = None,
        *,
        create_bucket: bool = False,
    ) -> None:
        self.bucket = bucket
        self.prefix = normalize_path(prefix, allow_root=True)
        if client is None:
            endpoint = S3Endpoint.from_env()
            self.endpoint = f"{endpoint.url} (from {endpoint.source})"
            client = endpoint.client()
        else:
            self.endpoint = "the endpoint of the given client"
        self.client = client
        self._reached = False
        self.outage_s = float(os.environ.get(OUTAGE_ENV) or OUTAGE_S)
        self._check_bucket(create_bucket)
        self._reached = True

    def _check_bucket(self, create: bool) -> None:
        try:
            with self._translate_errors(""):
                found = self.client.bucket_exists(self.bucket)
                if not found and create:
                    self.client.make_bucket(self.bucket)
                    logger.info("created bucket %s at %s", self.bucket, self.endpoint)
        except ValueError as exc:
            raise StoreError(f"invalid bucket name '{self.bucket}' in {self.uri()}: {exc}") from exc
        if not found and not create:
            raise StoreError(self._missing_bucket_message())

    def _missing_bucket_message(self) -> str:
        return (
            f"bucket '{self.bucket}' does not exist at {self.endpoint}; create it first "
            f"(e.g. `aws s3 mb s3://{self.bucket} --endpoint-url URL` or `mc mb ALIAS/{self.bucket}`) "
            "or open the store with create_bucket=True; if it should exist, check that the endpoint is right"
        )

    @contextlib.contextmanager
    def _translate_errors(self, path: str) -> Iterator[None]:
        """Turn SDK and network errors into a :class:`StoreError` naming the uri or endpoint."""
        try:
            yield
        except S3Error as exc:
            if exc.code in _MISSING_OBJECT_CODES:
                raise StoreError(f"not found: {self.uri(path)}") from None
            if exc.code == "NoSuchBucket":
                raise StoreError(self._missing_bucket_message()) from None
            hint = f"; {_CREDENTIALS_HINT}" if exc.code in _CREDENTIAL_CODES else ""
            raise StoreError(f"S3 error {exc.code} for {self.uri(path)} at {self.endpoint}: {exc.message}{hint}") from exc
        except MinioException as exc:
            raise StoreError(
                f"unexpected answer from {self.endpoint} for {self.uri(path)}: {exc}; is it an S3 server? {_ENDPOINT_HINT}"
            ) from exc
        except urllib3.exceptions.HTTPError as exc:
            reason = getattr(exc, "reason", None) or exc
            raise S3Unreachable(f"cannot reach S3 endpoint {self.endpoint}: {reason}; {_ENDPOINT_HINT}") from exc

    def _key(self, path: str) -> str:
        return join_path(self.prefix, normalize_path(path))

    def uri(self, path: str = "") -> str:
        """``s3://bucket/prefix/path``."""
        return "s3://" + join_path(self.bucket, join_path(self.prefix, normalize_path(path, allow_root=True)))

    @_ride_out_outages
    def exists(self, path: str) -> bool:
        """True when an object exists at ``path``."""
        key = self._key(path)
        with self._translate_errors(path):
            try:
                self.client.stat_object(self.bucket, key)
            except S3Error as exc:
                if exc.code in _MISSING_OBJECT_CODES:
                    return False
                raise
        return True

    @_ride_out_outages
    def read_bytes(self, path: str) -> bytes:
        """Return the object's content."""
        key = self._key(path)
        with self._translate_errors(path):
            response = self.client.get_object(self.bucket, key)
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

    @_ride_out_outages
    def write_bytes(self, path: str, data: bytes) -> None:
        """Put ``data`` at ``path`` (a single PUT: atomic)."""
        key = self._key(path)
        with self._translate_errors(path):
            self.client.put_object(self.bucket, key, io.BytesIO(data), len(data))
        logger.debug("wrote %s bytes to %s", len(data), self.uri(path))

    @_ride_out_outages
    def list(self, prefix: str = "") -> list[str]:
        """Sorted root-relative paths of all objects inside folder ``prefix``."""
        folder = join_path(self.prefix, normalize_path(prefix, allow_root=True))
        paths: list[str] = []
        with self._translate_errors(prefix):
            for item in self.client.list_objects(self.bucket, prefix=f"{folder}/" if folder else None, recursive=True):
                name = item.object_name or ""
                if item.is_dir or name.endswith("/"):
                    continue
                relative = name[len(self.prefix) + 1 :] if self.prefix else name
                if not is_temp_path(relative):
                    paths.append(relative)
        return sorted(paths)

    @_ride_out_outages
    def delete(self, path: str) -> None:
        """Remove the object at ``path`` (no error when it is missing)."""
        key = self._key(path)
        with self._translate_errors(path):
            self.client.remove_object(self.bucket, key)

    @_ride_out_outages
    def upload_file(self, local_path: str | Path, path: str) -> None:
        """Upload a local file (multipart for large files; the object appears only when complete)."""
        source = Path(local_path)
        if not source.is_file():
            raise StoreError(f"cannot upload {source} to {self.uri(path)}: {source} is not a file")
        key = self._key(path)
        with self._translate_errors(path):
            self.client.fput_object(self.bucket, key, str(source))

    @_ride_out_outages
    def download_file(self, path: str, local_path: str | Path) -> None:
        """Stream the object to a temp file next to ``local_path``, then rename it into place."""
        key = self._key(path)
        target = Path(local_path)
        with self._translate_errors(path):
            response = self.client.get_object(self.bucket, key)
            try:
                with atomic_file(target) as writer:
                    for chunk in response.stream(_CHUNK_BYTES):
                        writer.write(chunk)
            except OSError as exc:
                raise StoreError(f"cannot write {target} while downloading {self.uri(path)}: {exc}") from exc
            finally:
                response.close()
                response.release_conn()

    @_ride_out_outages
    def sha256(self, path: str) -> str:
        """Hex SHA-256 of the object, streamed."""
        key = self._key(path)
        digest = hashlib.sha256()
        with self._translate_errors(path):
            response = self.client.get_object(self.bucket, key)
            try:
                for chunk in response.stream(_CHUNK_BYTES):
                    digest.update(chunk)
            finally:
                response.close()
                response.release_conn()
        return digest.hexdigest()

    def child(self, prefix: str) -> S3Store:
        """A store at ``prefix`` inside this one, sharing the client (no new bucket check)."""
        sub = copy.copy(self)
        sub.prefix = join_path(self.prefix, normalize_path(prefix))
        return sub
