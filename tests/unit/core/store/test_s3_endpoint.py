"""S3Endpoint: which environment variable wins, and how each endpoint form maps to host + TLS."""

from __future__ import annotations

import pytest

from polya.core.errors import StoreError
from polya.core.store.s3 import S3Endpoint


def test_default_is_aws() -> None:
    endpoint = S3Endpoint.from_env({})
    assert (endpoint.host, endpoint.secure, endpoint.source) == ("s3.amazonaws.com", True, "default")


def test_variables_are_read_in_priority_order() -> None:
    env = {
        "MINIO_ENDPOINT": "minio:9000",
        "AWS_ENDPOINT_URL": "http://generic:1",
        "AWS_ENDPOINT_URL_S3": "http://s3-specific:2",
    }
    assert S3Endpoint.from_env(env).source == "AWS_ENDPOINT_URL_S3"
    env["POLYA_S3_ENDPOINT"] = "http://polya:3"
    endpoint = S3Endpoint.from_env(env)
    assert (endpoint.host, endpoint.source) == ("polya:3", "POLYA_S3_ENDPOINT")
    del env["POLYA_S3_ENDPOINT"], env["AWS_ENDPOINT_URL_S3"], env["AWS_ENDPOINT_URL"]
    assert S3Endpoint.from_env(env).host == "minio:9000"


@pytest.mark.parametrize(
    ("value", "insecure", "host", "secure"),
    [
        ("http://localhost:9000", False, "localhost:9000", False),
        ("http://localhost:9000/", False, "localhost:9000", False),
        ("https://s3.example.com", False, "s3.example.com", True),
        ("minio.svc:9000", False, "minio.svc:9000", True),
        ("minio.svc:9000", True, "minio.svc:9000", False),
        ("https://s3.example.com", True, "s3.example.com", True),  # an explicit scheme wins
    ],
)
def test_endpoint_forms(value: str, insecure: bool, host: str, secure: bool) -> None:
    env = {"POLYA_S3_ENDPOINT": value}
    if insecure:
        env["POLYA_S3_INSECURE"] = "1"
    endpoint = S3Endpoint.from_env(env)
    assert (endpoint.host, endpoint.secure) == (host, secure)
    assert endpoint.url == f"{'https' if secure else 'http'}://{host}"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ftp://host:21", "must be http:// or https://"),
        ("http://host:9000/bucket", "without a path"),
        ("http://", "names no host"),
    ],
)
def test_invalid_endpoints_name_the_variable(value: str, message: str) -> None:
    with pytest.raises(StoreError, match=f"MINIO_ENDPOINT=.*{message}"):
        S3Endpoint.from_env({"MINIO_ENDPOINT": value})


def test_access_key_without_secret_is_rejected() -> None:
    endpoint = S3Endpoint.from_env({})
    with pytest.raises(StoreError, match="AWS_SECRET_ACCESS_KEY is empty"):
        endpoint.client({"AWS_ACCESS_KEY_ID": "key"})
    with pytest.raises(StoreError, match="MINIO_SECRET_KEY is empty"):
        endpoint.client({"MINIO_ACCESS_KEY": "key"})
