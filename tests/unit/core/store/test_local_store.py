"""LocalStore: round trips, listings, atomic writes under failure and crash, path safety."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Callable

import pytest

from polya.core.errors import StoreError
from polya.core.store import LocalStore, open_store


@pytest.fixture()
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "root")


def test_root_is_created_on_first_write(tmp_path: Path) -> None:
    root = tmp_path / "not" / "yet"
    store = LocalStore(root)
    assert not root.exists()
    store.write_text("a/b.txt", "hi")
    assert (root / "a" / "b.txt").read_text() == "hi"


def test_round_trips(store: LocalStore, store_round_trips: Callable[[LocalStore], None]) -> None:
    store_round_trips(store)


def test_json_formats_on_disk(store: LocalStore) -> None:
    store.write_json("c.json", {"z": 1, "a": 2})
    text = (store.root / "c.json").read_text(encoding="utf-8")
    assert text == '{\n  "z": 1,\n  "a": 2\n}\n'  # indent 2, keys in given order
    store.write_jsonl("r.jsonl", [{"s": "é"}, {"n": 2}])
    assert (store.root / "r.jsonl").read_text(encoding="utf-8") == '{"s": "é"}\n{"n": 2}\n'


def test_overwrite_replaces_content(store: LocalStore) -> None:
    store.write_text("a.txt", "first, longer content")
    store.write_text("a.txt", "second")
    assert store.read_text("a.txt") == "second"


def test_read_jsonl_errors_name_file_and_line(store: LocalStore) -> None:
    store.write_text("bad.jsonl", '{"ok": 1}\n\n{broken\n')
    with pytest.raises(StoreError, match=r"bad\.jsonl: line 3: not valid JSON"):
        store.read_jsonl("bad.jsonl")
    store.write_text("list.jsonl", "[1, 2]\n")
    with pytest.raises(StoreError, match="line 1: expected a JSON object"):
        store.read_jsonl("list.jsonl")


def test_read_json_error_names_file(store: LocalStore) -> None:
    store.write_text("bad.json", "{nope")
    with pytest.raises(StoreError, match=r"bad\.json is not valid JSON"):
        store.read_json("bad.json")


def test_exists_and_delete(store: LocalStore) -> None:
    assert not store.exists("a.txt")
    store.write_text("a.txt", "x")
    assert store.exists("a.txt")
    store.delete("a.txt")
    assert not store.exists("a.txt")
    store.delete("a.txt")  # deleting a missing object is not an error


def test_exists_is_false_for_folders(store: LocalStore) -> None:
    store.write_text("folder/a.txt", "x")
    assert not store.exists("folder")


def test_list_is_sorted_recursive_and_filtered_by_folder(store: LocalStore) -> None:
    for path in ["b.txt", "a/z.txt", "a/sub/y.txt", "a2/x.txt", "a/b.txt"]:
        store.write_text(path, path)
    assert store.list() == ["a/b.txt", "a/sub/y.txt", "a/z.txt", "a2/x.txt", "b.txt"]
    assert store.list("a") == ["a/b.txt", "a/sub/y.txt", "a/z.txt"]  # not a2/
    assert store.list("a/") == store.list("a")
    assert store.list("a/sub") == ["a/sub/y.txt"]
    assert store.list("missing") == []


def test_list_on_missing_root_is_empty(tmp_path: Path) -> None:
    assert LocalStore(tmp_path / "nowhere").list() == []


def test_temp_files_are_never_listed(store: LocalStore) -> None:
    store.write_text("a/real.txt", "x")
    (store.root / "a" / ".tmp-123-real.txt").write_text("partial")
    (store.root / ".tmp-dir").mkdir()
    (store.root / ".tmp-dir" / "inside.txt").write_text("partial")
    assert store.list() == ["a/real.txt"]


def test_failed_replace_keeps_old_content_and_leaves_no_temp(store: LocalStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.write_text("a/data.txt", "old")

    def crash(src: object, dst: object) -> None:
        raise OSError("disk vanished")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(StoreError, match=r"cannot write .*data\.txt: disk vanished"):
        store.write_text("a/data.txt", "new content")
    monkeypatch.undo()

    assert store.read_text("a/data.txt") == "old"
    assert sorted(p.name for p in (store.root / "a").iterdir()) == ["data.txt"]
    assert store.list() == ["a/data.txt"]


def test_failed_first_write_leaves_nothing(store: LocalStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(fd: int) -> None:
        raise OSError("fsync failed")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(StoreError):
        store.write_jsonl("rows.jsonl", [{"a": 1}])
    monkeypatch.undo()
    assert not store.exists("rows.jsonl")
    assert list(store.root.iterdir()) == []


def test_process_killed_mid_write_leaves_old_content(store: LocalStore, tmp_path: Path) -> None:
    """A real crash: the writing process dies between writing the temp file and renaming it."""
    store.write_text("data.txt", "old")
    script = textwrap.dedent(
        f"""
        import os
        from polya.core.store import LocalStore
        os.replace = lambda src, dst: os._exit(17)  # die before the rename, no cleanup runs
        LocalStore({str(store.root)!r}).write_text("data.txt", "new " * 1000)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 17, result.stderr

    leftovers = [p.name for p in store.root.iterdir() if p.name.startswith(".tmp-")]
    assert len(leftovers) == 1  # the partial write is on disk...
    assert store.read_text("data.txt") == "old"  # ...but the object is intact
    assert store.list() == ["data.txt"]  # ...and the partial file is invisible


@pytest.mark.parametrize("bad", ["../x.txt", "a/../../x.txt", "/etc/passwd", "a/../.."])
def test_paths_escaping_the_root_are_rejected(store: LocalStore, bad: str) -> None:
    with pytest.raises(StoreError, match="absolute|escapes the store root"):
        store.write_text(bad, "x")
    with pytest.raises(StoreError):
        store.read_text(bad)


def test_dot_segments_and_double_slashes_are_normalized(store: LocalStore) -> None:
    store.write_text("./a//b.txt", "x")
    assert store.list() == ["a/b.txt"]
    assert store.read_text("a/b.txt") == "x"


def test_empty_path_is_rejected_for_objects(store: LocalStore) -> None:
    with pytest.raises(StoreError, match="store path is empty"):
        store.write_text("", "x")


def test_missing_file_error_names_full_path(store: LocalStore) -> None:
    expected = str(store.root / "no" / "such.txt")
    for read in (store.read_bytes, store.read_text, store.read_json, store.read_jsonl, store.sha256):
        with pytest.raises(StoreError, match="not found: " + expected.replace(".", r"\.")):
            read("no/such.txt")


def test_uri(store: LocalStore) -> None:
    assert store.uri() == str(store.root)
    assert store.uri("a/b.jsonl") == str(store.root / "a" / "b.jsonl")


def test_sha256_matches_content(store: LocalStore) -> None:
    data = os.urandom(3 << 20)  # several read chunks
    store.write_bytes("big.bin", data)
    assert store.sha256("big.bin") == hashlib.sha256(data).hexdigest()


def test_child_store_is_rooted_at_prefix(store: LocalStore) -> None:
    child = store.child("runs/r1")
    assert isinstance(child, LocalStore)
    child.write_text("gen/rows.jsonl", "x")
    assert store.read_text("runs/r1/gen/rows.jsonl") == "x"
    assert child.list() == ["gen/rows.jsonl"]
    assert child.uri("gen/rows.jsonl") == store.uri("runs/r1/gen/rows.jsonl")
    with pytest.raises(StoreError):
        store.child("../outside")


def test_upload_and_download_file(store: LocalStore, tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(b"payload")
    store.upload_file(source, "up/file.bin")
    assert store.read_bytes("up/file.bin") == b"payload"

    target = tmp_path / "down" / "deep" / "file.bin"
    store.download_file("up/file.bin", target)
    assert target.read_bytes() == b"payload"


def test_download_missing_file_leaves_no_local_file(store: LocalStore, tmp_path: Path) -> None:
    target = tmp_path / "down" / "x.bin"
    with pytest.raises(StoreError, match="not found"):
        store.download_file("nope.bin", target)
    assert not target.exists()


def test_upload_missing_local_file(store: LocalStore, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is not a file"):
        store.upload_file(tmp_path / "ghost.bin", "x.bin")


def test_upload_and_download_dir(store: LocalStore, tmp_path: Path) -> None:
    checkpoint = tmp_path / "ckpt"
    (checkpoint / "sub").mkdir(parents=True)
    (checkpoint / "config.json").write_text("{}")
    (checkpoint / "sub" / "weights.bin").write_bytes(b"w" * 100)
    (checkpoint / ".tmp-abc-partial").write_text("ignored")

    uploaded = store.upload_dir(checkpoint, "models/sft")
    assert uploaded == ["models/sft/config.json", "models/sft/sub/weights.bin"]
    assert store.list("models") == uploaded

    restored = tmp_path / "restored"
    files = store.download_dir("models/sft", restored)
    assert sorted(p.relative_to(restored).as_posix() for p in files) == ["config.json", "sub/weights.bin"]
    assert (restored / "sub" / "weights.bin").read_bytes() == b"w" * 100


def test_download_dir_of_missing_folder_fails(store: LocalStore, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no objects under .*models"):
        store.download_dir("models/none", tmp_path / "out")


def test_upload_dir_requires_a_folder(store: LocalStore, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not a folder"):
        store.upload_dir(tmp_path / "missing", "x")


def test_open_store_local_forms(tmp_path: Path) -> None:
    assert isinstance(open_store(tmp_path), LocalStore)
    assert open_store(str(tmp_path)).uri() == str(tmp_path)
    assert open_store(f"file://{tmp_path}").uri() == str(tmp_path)
    relative = open_store("runs/r1")
    assert isinstance(relative, LocalStore) and relative.uri() == str(Path.cwd() / "runs" / "r1")


@pytest.mark.parametrize("uri", ["gs://bucket/x", "http://example.com/x", "hdfs:///data"])
def test_open_store_rejects_unknown_schemes(uri: str) -> None:
    with pytest.raises(StoreError, match=r"s3://bucket/prefix, file:///absolute/path, a plain local path"):
        open_store(uri)


def test_open_store_s3_without_bucket() -> None:
    with pytest.raises(StoreError, match="names no bucket"):
        open_store("s3:///prefix")


def test_open_store_rejects_remote_file_host() -> None:
    with pytest.raises(StoreError, match="must be local"):
        open_store("file://otherhost/data")
