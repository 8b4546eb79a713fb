"""Annotations: users set or clear the entry fields the service does not own (PATCH, CONTRACT §4)."""

from __future__ import annotations

from typing import Any

from loraledger.application.context import UseCase
from loraledger.domain import blobs, policies
from loraledger.domain.entries import check_settable
from loraledger.domain.subjects import STYLE, SubjectKind
from loraledger.domain.training_version import TrainingVersion


class AnnotateCommands(UseCase):
    def annotate(
        self,
        style_id: int,
        version_name: str,
        set_fields: dict[str, Any],
        cleared: list[str],
        kind: SubjectKind = STYLE,
    ) -> TrainingVersion:
        """Only what really changes is recorded; the same values again record nothing."""
        check_settable([*set_fields, *cleared], "changed")
        blobs.check_fields(set_fields, "fields")
        blobs.check(dict.fromkeys(cleared), "cleared fields")  # the same key rules as for set ones

        def command() -> TrainingVersion:
            version = self.store.require_version(style_id, version_name, kind)
            changes, clear = policies.annotation_changes(version.entry, set_fields, cleared)
            if changes or clear:
                version.annotate(set_fields=changes, cleared=clear)
                self.store.save_all(version)
            return version

        return self.store.retrying(command)
