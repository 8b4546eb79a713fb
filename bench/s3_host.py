"""The moto S3 test server in a process of its own, driven by JSON lines on stdin (see common.S3Host).

Prints `{"endpoint_url": ...}` once listening; then for each `{"op": "seed", "bucket", "prefix",
"files", "styles"}` (optionally `"kind": "actor"`, and `"create": false` for a bucket seeded
before) creates the bucket and writes the files straight into moto's backend
(tests/support/s3_server.py `S3Bucket.put_many`), answering `{"seconds": ...}`; `{"op": "quit"}` stops.
"""

from __future__ import annotations

import json
import logging
import sys
import time

from moto.server import ThreadedMotoServer

from bench.common import file_layout, lora_key
from tests.support.s3_server import S3Bucket, S3Server


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    s3 = S3Server(endpoint_url=f"http://{host}:{port}")
    client = s3.client()
    print(json.dumps({"endpoint_url": s3.endpoint_url}), flush=True)
    try:
        for line in sys.stdin:
            command = json.loads(line)
            if command["op"] == "quit":
                break
            try:
                start = time.perf_counter()
                if command.get("create", True):
                    client.create_bucket(Bucket=command["bucket"])
                bucket = S3Bucket(name=command["bucket"], server=s3, _client=client)
                kind = command.get("kind", "style")  # or "actor": actor_<id>_V<n> files
                keys = (
                    lora_key(command["prefix"], style, number, kind)
                    for style, number in file_layout(command["files"], command["styles"])
                )
                bucket.put_many(keys, body=b"safetensors")
                print(json.dumps({"seconds": time.perf_counter() - start}), flush=True)
            except Exception as error:
                print(json.dumps({"error": f"{type(error).__name__}: {error}"}), flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
