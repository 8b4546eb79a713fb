"""S3 event notifications, one change at a time: a created file goes through the sync rules
(decision source `s3-event`), a removed one is recorded on its version.

Each change is one transaction that also records the change's sequencer on the style's index, so
a redelivered change, or one overtaken by a later change of the same key, records nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from loraledger.application.context import UseCase
from loraledger.application.sync import SyncCommands
from loraledger.domain.decisions import Decision, Rule, SyncOutcome
from loraledger.domain.indexes import StyleIndex
from loraledger.domain.naming import ModelName, NameRejected, parse_lora_key
from loraledger.domain.observations import S3Change
from loraledger.domain.skips import SkippedFile
from loraledger.domain.subjects import ACTOR, STYLE, SubjectKind
from loraledger.domain.times import format_time
from loraledger.domain.training_version import TrainingVersion
from loraledger.domain.urls import lora_url


class ChangeOutcome(StrEnum):
    """What one S3 change did (the queue metrics and logs name these)."""

    RECORDED = "recorded"
    UNCHANGED = "unchanged"  # nothing new: a redelivery, or a file already recorded
    STALE = "stale"  # an older change of the key than one already taken in
    SKIPPED = "skipped"  # not a LoRA file of ours: said why


@dataclass(slots=True)
class ChangeResult:
    outcome: ChangeOutcome
    key: str
    reason: str = ""
    style_id: int | None = None
    version_name: str | None = None
    decisions: list[Decision] = field(default_factory=list)
    versions: list[TrainingVersion] = field(default_factory=list)  # as saved, for the files
    kind: SubjectKind = STYLE  # whose id `style_id` is: an actor's for a key under the actors' prefix


class S3EventCommands(UseCase):
    def take(self, change: S3Change) -> ChangeResult:
        """Record what one S3 change means; nothing when it was already taken in."""
        key = change.lora.key
        prefix, actor_prefix = self.config.s3_prefix, self.config.s3_actor_prefix
        kind = ACTOR if actor_prefix is not None and key.startswith(actor_prefix) else STYLE
        if kind == STYLE and not key.startswith(prefix):
            return ChangeResult(ChangeOutcome.SKIPPED, key, f"outside the prefixes ({prefix!r})")
        try:
            model = parse_lora_key(key, kind)
        except NameRejected as rejected:
            if change.kind == "created":
                self._record_not_named(change, rejected.reason)
            return ChangeResult(ChangeOutcome.SKIPPED, key, rejected.reason, kind=kind)

        def command() -> ChangeResult:
            index = self.store.style_index(model.style_id, kind)
            if not index.is_news(key, change.sequencer):
                return ChangeResult(ChangeOutcome.STALE, key, "an event of this key as late was taken in")
            index.see_sequencer(key, change.sequencer)
            if change.kind == "created":
                return self._created(index, change, model)
            return self._removed(index, change, model)

        return self.store.retrying(command)

    def _created(self, index: StyleIndex, change: S3Change, model: ModelName) -> ChangeResult:
        url_base = self.config.lora_url_base
        if url_base is None:
            raise ValueError("S3 events need the LoRA URL base (LORALEDGER_S3_BUCKET or _LORA_URL_BASE)")
        sync = SyncCommands(self.store, self.config, self.clock, self.new_id)
        listed = self.store.skipped_files()
        synced = sync.match_files(index, [(change.lora, model)], url_base, "s3-event", listed)
        self.store.save_all(index, *synced.versions, listed if listed.has_new_skips else None)
        result = ChangeResult(
            ChangeOutcome.RECORDED if synced.events else ChangeOutcome.UNCHANGED,
            change.lora.key,
            style_id=model.style_id,
            version_name=model.version_name,
            decisions=synced.decisions,
            versions=synced.versions if synced.events else [],
            kind=model.kind,
        )
        if synced.skipped:
            result.outcome, result.reason = ChangeOutcome.SKIPPED, synced.skipped[0]["reason"]
        elif not synced.events and not synced.decisions:
            result.reason = "the file is already recorded with this ETag"
        return result

    def _record_not_named(self, change: S3Change, reason: str) -> None:
        """A created key that names no LoRA: recorded once per (key, ETag) with why (CONTRACT §12)."""
        skip = SkippedFile(
            key=change.lora.key,
            etag=change.lora.etag,
            reason=reason,
            rule=Rule.NOT_A_LORA_NAME,
            source="s3-event",
            style_id=None,
            version=None,
            skipped_at=format_time(self.clock()),
        )

        def command() -> None:
            listed = self.store.skipped_files()
            listed.record([skip])
            if listed.has_new_skips:
                self.store.save_all(listed)

        self.store.retrying(command)

    def _removed(self, index: StyleIndex, change: S3Change, model: ModelName) -> ChangeResult:
        key = change.lora.key
        index.forget_files([key])
        owner = next(
            (v for v in self.store.style_versions(model.style_id, model.kind) if key in v.files), None
        )
        result = ChangeResult(ChangeOutcome.UNCHANGED, key, style_id=model.style_id, kind=model.kind)
        if owner is None:
            result.reason = "no version has this file"
        else:
            decision = Decision(
                source="s3-event",
                rule=Rule.FILE_REMOVED,
                outcome=SyncOutcome.REMOVED,
                input={"key": key, "sequencer": change.sequencer},
            )
            base = self.config.lora_url_base
            offered = lora_url(base, key) if base is not None else None
            owner.remove_file(key, offered_url=offered, at=self.clock(), decision=decision)
            result = ChangeResult(
                ChangeOutcome.RECORDED,
                key,
                style_id=model.style_id,
                version_name=owner.version_name,
                decisions=[decision],
                versions=[owner],
                kind=model.kind,
            )
        self.store.save_all(index, owner)
        return result
