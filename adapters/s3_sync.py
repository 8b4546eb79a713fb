"""One S3 sync: list the bucket under the prefix and hand every object to the sync command."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from loraledger.adapters.s3_listing import list_objects
from loraledger.application.sync import StyleSaved, SyncCommands, SyncReport
from loraledger.domain.observations import LoraObject


def sync_bucket(
    sync: SyncCommands,
    client: Any,
    *,
    bucket: str,
    prefix: str,
    url_base: str,
    only_style: int | None = None,
    on_listed: Callable[[int], None] | None = None,
    on_saved: StyleSaved | None = None,
) -> SyncReport:
    """List, then match. The whole listing is read before anything is recorded, so a listing that
    fails part-way (S3 errors after retries) records nothing."""
    objects: Iterator[LoraObject] = list_objects(client, bucket, prefix)
    if on_listed is not None:
        objects = _counting(objects, on_listed)
    return sync.observe(objects, url_base=url_base, only_style=only_style, on_saved=on_saved)


def _counting(objects: Iterator[LoraObject], on_listed: Callable[[int], None]) -> Iterator[LoraObject]:
    for count, lora in enumerate(objects, start=1):
        yield lora
        if count % 1000 == 0:
            on_listed(1000)
