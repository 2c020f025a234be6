"""Copy a model directory from S3/MinIO to a local directory (the vLLM pod's init container).

    python fetch-model.py BUCKET PREFIX DEST

Endpoint and keys come from POLYA_S3_ENDPOINT, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (set by
the chart). Files already present with the same size are skipped, so a restarted pod resumes.
"""

import os
import sys
from pathlib import Path
from urllib.parse import urlparse

from minio import Minio


def main(bucket: str, prefix: str, dest: str) -> int:
    endpoint = os.environ.get("POLYA_S3_ENDPOINT", "")
    url = urlparse(endpoint)
    if url.scheme not in ("http", "https") or not url.netloc:
        print(f"fetch-model: POLYA_S3_ENDPOINT={endpoint!r} is not an http(s) URL", file=sys.stderr)
        return 2
    client = Minio(
        url.netloc,
        access_key=os.environ.get("AWS_ACCESS_KEY_ID"),
        secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY"),
        region=os.environ.get("AWS_REGION") or None,
        secure=url.scheme == "https",
    )
    prefix = prefix.strip("/") + "/"
    root = Path(dest)
    count = 0
    for obj in client.list_objects(bucket, prefix=prefix, recursive=True):
        if obj.is_dir:
            continue
        target = root / obj.object_name[len(prefix):]
        if target.exists() and target.stat().st_size == obj.size:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        client.fget_object(bucket, obj.object_name, str(partial))
        partial.rename(target)
        count += 1
        print(f"fetch-model: {obj.object_name} ({obj.size} bytes)", flush=True)
    if not any(root.rglob("*")):
        print(f"fetch-model: no objects under s3://{bucket}/{prefix} at {endpoint}", file=sys.stderr)
        return 1
    print(f"fetch-model: {count} files copied to {root}", flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))
