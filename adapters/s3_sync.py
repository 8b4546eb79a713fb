"""One S3 sync: list the bucket under the prefix (and the actors' prefix, when there is one) and
hand every object to the sync command: one report for both."""

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
    actor_prefix: str | None = None,
    only_actor: int | None = None,
) -> SyncReport:
    """List, then match. The whole listing is read before anything is recorded, so a listing that
    fails part-way (S3 errors after retries) records nothing. Only the prefix of the subject kind
    asked for is listed (`only_style`: not the actors'; `only_actor`: not the styles')."""
    objects: Iterator[LoraObject] = (
        iter(()) if only_actor is not None else list_objects(client, bucket, prefix)
    )
    actor_objects: Iterator[LoraObject] = (
        iter(())
        if actor_prefix is None or only_style is not None
        else list_objects(client, bucket, actor_prefix)
    )
    if actor_prefix is not None and actor_prefix.startswith(prefix):
        # The actors' files under the styles' prefix are listed once, as actors'.
        objects = (lora for lora in objects if not lora.key.startswith(actor_prefix))
    if on_listed is not None:
        objects = _counting(objects, on_listed)
        actor_objects = _counting(actor_objects, on_listed)
    return sync.observe(
        objects,
        url_base=url_base,
        only_style=only_style,
        on_saved=on_saved,
        actor_objects=actor_objects,
        only_actor=only_actor,
    )


def _counting(objects: Iterator[LoraObject], on_listed: Callable[[int], None]) -> Iterator[LoraObject]:
    for count, lora in enumerate(objects, start=1):
        yield lora
        if count % 1000 == 0:
            on_listed(1000)
