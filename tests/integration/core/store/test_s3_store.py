"""S3Store against a real S3-protocol server process (moto), configured from the environment."""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from polya.core.errors import StoreError
from polya.core.manifest import RunManifest
from polya.core.store import S3Store, open_store

pytestmark = pytest.mark.integration

@pytest.fixture()
def store(bucket: str) -> S3Store:
    return S3Store(bucket, "runs/r1")


def test_round_trips(store: S3Store, store_round_trips: Callable[[S3Store], None]) -> None:
    store_round_trips(store)


def test_objects_live_under_the_prefix(store: S3Store, bucket: str) -> None:
    store.write_text("a.txt", "x")
    assert store.uri("a.txt") == f"s3://{bucket}/runs/r1/a.txt"
    assert S3Store(bucket).read_text("runs/r1/a.txt") == "x"


def test_overwrite_exists_delete(store: S3Store) -> None:
    assert not store.exists("a.txt")
    store.write_text("a.txt", "first, longer")
    store.write_text("a.txt", "second")
    assert store.read_text("a.txt") == "second"
    assert store.exists("a.txt")
    store.delete("a.txt")
    assert not store.exists("a.txt")
    store.delete("a.txt")  # deleting a missing object is not an error


def test_failing_row_generator_leaves_old_object(store: S3Store) -> None:
    store.write_jsonl("rows.jsonl", [{"old": True}])

    def rows() -> Iterator[dict[str, Any]]:
        yield {"new": 1}
        raise RuntimeError("generation crashed")

    with pytest.raises(RuntimeError):
        store.write_jsonl("rows.jsonl", rows())
    assert store.read_jsonl("rows.jsonl") == [{"old": True}]


def test_list_is_sorted_recursive_and_filtered_by_folder(store: S3Store, bucket: str) -> None:
    for path in ["b.txt", "a/z.txt", "a/sub/y.txt", "a2/x.txt", "a/b.txt"]:
        store.write_text(path, path)
    S3Store(bucket, "runs/r10").write_text("other.txt", "not in runs/r1")

    assert store.list() == ["a/b.txt", "a/sub/y.txt", "a/z.txt", "a2/x.txt", "b.txt"]
    assert store.list("a") == ["a/b.txt", "a/sub/y.txt", "a/z.txt"]
    assert store.list("a/sub/") == ["a/sub/y.txt"]
    assert store.list("missing") == []
    assert S3Store(bucket).list("runs") == [f"runs/r1/{p}" for p in store.list()] + ["runs/r10/other.txt"]


def test_list_skips_folder_markers_and_temp_objects(store: S3Store, bucket: str) -> None:
    store.write_text("a/real.txt", "x")
    store.client.put_object(bucket, "runs/r1/a/", io.BytesIO(b""), 0)  # a console-made "folder"
    store.client.put_object(bucket, "runs/r1/a/.tmp-123-real.txt", io.BytesIO(b"p"), 1)
    assert store.list() == ["a/real.txt"]


def test_missing_object_errors_name_the_uri(store: S3Store, bucket: str, tmp_path: Path) -> None:
    uri = f"s3://{bucket}/runs/r1/no/such.txt"
    for read in (store.read_bytes, store.read_text, store.read_json, store.read_jsonl, store.sha256):
        with pytest.raises(StoreError, match=f"not found: {uri}"):
            read("no/such.txt")
    target = tmp_path / "down" / "such.txt"
    with pytest.raises(StoreError, match=f"not found: {uri}"):
        store.download_file("no/such.txt", target)
    assert not target.exists()


def test_paths_escaping_the_prefix_are_rejected(store: S3Store) -> None:
    with pytest.raises(StoreError, match="escapes the store root"):
        store.write_text("../r2/x.txt", "x")


def test_large_file_upload_download_and_checksum(store: S3Store, tmp_path: Path) -> None:
    data = os.urandom(12 << 20)  # above the multipart threshold
    source = tmp_path / "weights.bin"
    source.write_bytes(data)
    store.upload_file(source, "ckpt/weights.bin")
    assert store.sha256("ckpt/weights.bin") == hashlib.sha256(data).hexdigest()

    target = tmp_path / "down" / "weights.bin"
    store.download_file("ckpt/weights.bin", target)
    assert target.read_bytes() == data
    assert [p.name for p in target.parent.iterdir()] == ["weights.bin"]  # no temp left behind


def test_upload_and_download_dir(store: S3Store, tmp_path: Path) -> None:
    checkpoint = tmp_path / "ckpt"
    (checkpoint / "sub").mkdir(parents=True)
    (checkpoint / "config.json").write_text("{}")
    (checkpoint / "sub" / "weights.bin").write_bytes(b"w" * 100)

    assert store.upload_dir(checkpoint, "models/sft") == ["models/sft/config.json", "models/sft/sub/weights.bin"]
    restored = tmp_path / "restored"
    files = store.download_dir("models/sft", restored)
    assert sorted(p.relative_to(restored).as_posix() for p in files) == ["config.json", "sub/weights.bin"]
    assert (restored / "sub" / "weights.bin").read_bytes() == b"w" * 100
    with pytest.raises(StoreError, match=r"no objects under s3://.*/runs/r1/models/none"):
        store.download_dir("models/none", tmp_path / "nothing")


def test_child_store(store: S3Store, bucket: str) -> None:
    child = store.child("generate")
    assert isinstance(child, S3Store)
    child.write_text("rows.jsonl", "{}\n")
    assert child.uri("rows.jsonl") == f"s3://{bucket}/runs/r1/generate/rows.jsonl"
    assert store.list() == ["generate/rows.jsonl"]
    assert child.list() == ["rows.jsonl"]


def test_open_store_s3_uri(bucket: str) -> None:
    opened = open_store(f"s3://{bucket}/runs/r2/")
    assert isinstance(opened, S3Store)
    opened.write_json("m.json", {"ok": True})
    assert opened.uri("m.json") == f"s3://{bucket}/runs/r2/m.json"
    assert open_store(f"s3://{bucket}").read_json("runs/r2/m.json") == {"ok": True}


def test_missing_bucket_is_a_clear_error(s3_env: str) -> None:
    name = f"polya-missing-{secrets.token_hex(4)}"
    with pytest.raises(StoreError, match=f"bucket '{name}' does not exist at {s3_env}.*create_bucket=True"):
        S3Store(name)
    with pytest.raises(StoreError, match=f"bucket '{name}' does not exist"):
        open_store(f"s3://{name}/prefix")
    open_store(f"s3://{name}/prefix", create_bucket=True).write_text("a.txt", "x")
    assert S3Store(name).read_text("prefix/a.txt") == "x"


def test_invalid_bucket_name(s3_env: str) -> None:
    with pytest.raises(StoreError, match=r"invalid bucket name 'bad\.\.name' in s3://bad\.\.name"):
        S3Store("bad..name")


@pytest.mark.timeout(60)
def test_dead_endpoint_fails_fast_and_names_it(s3_env: str, free_tcp_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    dead = f"http://127.0.0.1:{free_tcp_port}"  # nothing listens there
    monkeypatch.setenv("POLYA_S3_ENDPOINT", dead)
    started = time.monotonic()
    with pytest.raises(StoreError, match=f"cannot reach S3 endpoint {dead} \\(from POLYA_S3_ENDPOINT\\).*POLYA_S3_ENDPOINT"):
        open_store("s3://any-bucket/x")
    assert time.monotonic() - started < 15


def test_run_manifest_on_s3(store: S3Store) -> None:
    manifest = RunManifest.load_or_create(store)
    manifest.start_stage("generate", {"n": 1})
    store.write_jsonl("generate/rows.jsonl", [{"a": 1}])
    manifest.finish_stage("generate", ["generate"], {"rows": 1})

    reloaded = RunManifest.load_or_create(store)
    assert reloaded.is_done("generate", {"n": 1})
    store.write_jsonl("generate/rows.jsonl", [{"a": 2}])
    assert not reloaded.is_done("generate", {"n": 1})
