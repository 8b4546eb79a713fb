"""`adapters.s3_listing` against a real S3-compatible HTTP server (moto), with injected faults."""

from __future__ import annotations

import hashlib
import socket
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from loraledger.adapters.s3_listing import (
    S3ListingError,
    default_lora_url_base,
    list_objects,
    make_s3_client,
)
from tests.support.s3_server import FaultyEndpoint, S3Bucket, S3Server


def test_lists_every_key_under_the_prefix_and_none_outside(s3_bucket: S3Bucket) -> None:
    inside = {
        "loras/alpha.safetensors": b"alpha",
        "loras/nested/beta.safetensors": b"beta!",
        "loras/readme.txt": b"",
        "loras/my lora ü+&=%.safetensors": b"odd name",
    }
    outside = ["loras", "lorasx/gamma.safetensors", "other/loras/delta.safetensors", "top.bin"]
    etags = {key: s3_bucket.put(key, body) for key, body in inside.items()}
    for key in outside:
        s3_bucket.put(key)

    client = make_s3_client(s3_bucket.server.endpoint_url)
    listed = {obj.key: obj for obj in list_objects(client, s3_bucket.name, "loras/")}

    assert set(listed) == set(inside)
    for key, body in inside.items():
        assert listed[key].etag == etags[key] == hashlib.md5(body).hexdigest()
        assert listed[key].size == len(body)


def test_empty_prefix_lists_the_whole_bucket(s3_bucket: S3Bucket) -> None:
    s3_bucket.put_many([f"a/{i}" for i in range(3)] + ["b", "c/d"])
    client = make_s3_client(s3_bucket.server.endpoint_url)

    assert sorted(o.key for o in list_objects(client, s3_bucket.name, "")) == [
        "a/0",
        "a/1",
        "a/2",
        "b",
        "c/d",
    ]


def test_an_empty_listing_yields_nothing(s3_bucket: S3Bucket) -> None:
    client = make_s3_client(s3_bucket.server.endpoint_url)
    assert list(list_objects(client, s3_bucket.name, "loras/")) == []


def test_pagination_returns_each_of_2500_objects_exactly_once(
    s3_bucket: S3Bucket, s3_faulty_endpoint: FaultyEndpoint
) -> None:
    keys = [f"loras/user-{i % 7}/model-{i:05d}.safetensors" for i in range(2500)]
    s3_bucket.put_many(keys)
    s3_bucket.put_many([f"zz-outside/{i}" for i in range(50)])

    client = make_s3_client(s3_faulty_endpoint.endpoint_url)  # a fault-free proxy counts pages
    counts = Counter(obj.key for obj in list_objects(client, s3_bucket.name, "loras/"))

    assert counts.keys() == set(keys)
    assert set(counts.values()) == {1}
    assert s3_faulty_endpoint.requests_seen == 3  # pages of 1000, 1000, 500


def test_listing_is_lazy_one_page_at_a_time(s3_bucket: S3Bucket, s3_faulty_endpoint: FaultyEndpoint) -> None:
    s3_bucket.put_many(f"loras/{i:05d}" for i in range(2001))
    client = make_s3_client(s3_faulty_endpoint.endpoint_url)

    objects = list_objects(client, s3_bucket.name, "loras/")
    assert s3_faulty_endpoint.requests_seen == 0
    assert next(objects).key == "loras/00000"
    assert s3_faulty_endpoint.requests_seen == 1
    for _ in range(999):
        next(objects)
    assert s3_faulty_endpoint.requests_seen == 1
    assert next(objects).key == "loras/01000"
    assert s3_faulty_endpoint.requests_seen == 2


def test_etag_is_unquoted_and_last_modified_is_aware_utc(s3_bucket: S3Bucket) -> None:
    before = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    http_etag = s3_bucket.put("loras/one.safetensors", b"weights")
    bulk_etag = s3_bucket.put_many(["loras/two.safetensors"], b"other weights")
    after = datetime.now(UTC) + timedelta(seconds=1)

    client = make_s3_client(s3_bucket.server.endpoint_url)
    objects = {o.key: o for o in list_objects(client, s3_bucket.name, "loras/")}

    assert objects["loras/one.safetensors"].etag == http_etag == hashlib.md5(b"weights").hexdigest()
    assert objects["loras/two.safetensors"].etag == bulk_etag
    for obj in objects.values():
        assert '"' not in obj.etag
        assert obj.last_modified.tzinfo is UTC
        assert before <= obj.last_modified <= after


def test_deleted_objects_are_not_listed(s3_bucket: S3Bucket) -> None:
    s3_bucket.put_many(["loras/keep", "loras/drop"])
    s3_bucket.delete("loras/drop")
    client = make_s3_client(s3_bucket.server.endpoint_url)

    assert [o.key for o in list_objects(client, s3_bucket.name, "loras/")] == ["loras/keep"]


def test_missing_bucket_is_a_listing_error_naming_the_bucket(s3_server: S3Server) -> None:
    client = make_s3_client(s3_server.endpoint_url)

    with pytest.raises(S3ListingError) as caught:
        list(list_objects(client, "loraledger-no-such-bucket", "loras/"))

    assert caught.value.bucket == "loraledger-no-such-bucket"
    assert caught.value.code == "NoSuchBucket"
    message = str(caught.value)
    assert "loraledger-no-such-bucket" in message
    assert "NoSuchBucket" in message
    assert "\n" not in message


def test_two_slowdowns_are_retried_then_the_listing_succeeds(
    s3_bucket: S3Bucket, s3_faulty_endpoint: FaultyEndpoint
) -> None:
    s3_bucket.put_many([f"loras/{i}" for i in range(10)])
    s3_faulty_endpoint.fail_next(2, status=503, code="SlowDown")
    client = make_s3_client(s3_faulty_endpoint.endpoint_url, max_attempts=3)

    assert len(list(list_objects(client, s3_bucket.name, "loras/"))) == 10
    assert s3_faulty_endpoint.faults_served == 2
    assert s3_faulty_endpoint.requests_seen == 3


def test_internal_errors_are_retried_too(s3_bucket: S3Bucket, s3_faulty_endpoint: FaultyEndpoint) -> None:
    s3_bucket.put_many([f"loras/{i}" for i in range(1500)])
    client = make_s3_client(s3_faulty_endpoint.endpoint_url, max_attempts=3)

    objects = list_objects(client, s3_bucket.name, "loras/")
    first_page = [next(objects) for _ in range(1000)]
    s3_faulty_endpoint.fail_next(2, status=500, code="InternalError")  # fails the 2nd page
    rest = list(objects)

    assert len({o.key for o in first_page + rest}) == 1500
    assert s3_faulty_endpoint.faults_served == 2


def test_persistent_slowdown_becomes_a_listing_error_after_the_retries(
    s3_bucket: S3Bucket, s3_faulty_endpoint: FaultyEndpoint
) -> None:
    s3_faulty_endpoint.fail_next(100, status=503, code="SlowDown")
    client = make_s3_client(s3_faulty_endpoint.endpoint_url, max_attempts=3)

    with pytest.raises(S3ListingError) as caught:
        list(list_objects(client, s3_bucket.name, "loras/"))

    assert s3_faulty_endpoint.faults_served == 3
    assert caught.value.code == "SlowDown"
    message = str(caught.value)
    assert s3_bucket.name in message
    assert "SlowDown" in message
    assert "503" in message
    assert s3_faulty_endpoint.secret_key not in message
    assert s3_faulty_endpoint.access_key not in message


def test_access_denied_is_a_listing_error_without_retries(
    s3_bucket: S3Bucket, s3_faulty_endpoint: FaultyEndpoint
) -> None:
    s3_faulty_endpoint.fail_next(5, status=403, code="AccessDenied", message="Access Denied")
    client = make_s3_client(s3_faulty_endpoint.endpoint_url)

    with pytest.raises(S3ListingError) as caught:
        list(list_objects(client, s3_bucket.name, "loras/"))

    assert caught.value.code == "AccessDenied"
    assert str(caught.value) == (
        f"S3 listing of bucket {s3_bucket.name!r} (prefix 'loras/') failed: "
        "AccessDenied (HTTP 403): Access Denied"
    )
    assert s3_faulty_endpoint.requests_seen == 1


def test_max_attempts_counts_the_first_attempt(
    s3_bucket: S3Bucket, s3_faulty_endpoint: FaultyEndpoint
) -> None:
    s3_faulty_endpoint.fail_next(10, status=500, code="InternalError")
    client = make_s3_client(s3_faulty_endpoint.endpoint_url, max_attempts=1)

    with pytest.raises(S3ListingError) as caught:
        list(list_objects(client, s3_bucket.name, "loras/"))

    assert caught.value.code == "InternalError"
    assert s3_faulty_endpoint.requests_seen == 1


def test_credentials_echoed_by_the_server_are_masked(
    s3_bucket: S3Bucket, s3_faulty_endpoint: FaultyEndpoint
) -> None:
    secret, access = s3_faulty_endpoint.secret_key, s3_faulty_endpoint.access_key
    s3_faulty_endpoint.fail_next(
        1, status=403, code="SignatureDoesNotMatch", message=f"key {access} secret {secret}"
    )
    client = make_s3_client(s3_faulty_endpoint.endpoint_url, max_attempts=1)

    with pytest.raises(S3ListingError) as caught:
        list(list_objects(client, s3_bucket.name, "loras/"))

    message = str(caught.value)
    assert "SignatureDoesNotMatch" in message
    assert secret not in message
    assert access not in message


def test_unreachable_endpoint_fails_quickly_with_a_listing_error(s3_server: S3Server) -> None:
    with socket.socket() as probe:  # a port nobody listens on (bound, never listened, closed)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_s3_client(f"http://127.0.0.1:{port}", max_attempts=2, connect_timeout=0.5, read_timeout=1)

    started = time.monotonic()
    with pytest.raises(S3ListingError) as caught:
        list(list_objects(client, "loraledger-unreachable", "loras/"))

    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert "loraledger-unreachable" in message
    assert caught.value.code == "EndpointConnectionError"
    assert s3_server.secret_key not in message


def test_lists_every_one_of_20000_objects_across_listing_pages(s3_bucket: S3Bucket) -> None:
    # How fast the listing goes is measured in bench/sync_bench.py, not here.
    keys = [f"loras/user-{i % 50:02d}/lora-{i:06d}.safetensors" for i in range(20_000)]
    s3_bucket.put_many(keys)

    client = make_s3_client(s3_bucket.server.endpoint_url)
    listed = [obj.key for obj in list_objects(client, s3_bucket.name, "loras/")]

    assert len(listed) == 20_000
    assert sorted(listed) == sorted(keys)


def test_default_lora_url_base() -> None:
    assert default_lora_url_base("loras", None) == "https://loras.s3.amazonaws.com/"
    assert default_lora_url_base("loras", "http://127.0.0.1:9000/") == "http://127.0.0.1:9000/loras/"
    assert (
        default_lora_url_base("loras", "https://acc.r2.cloudflarestorage.com")
        == "https://acc.r2.cloudflarestorage.com/loras/"
    )
