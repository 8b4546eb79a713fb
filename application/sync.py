"""S3 sync: every listed LoRA file through the two-pass matching, one transaction per style.

A re-sync with nothing new reads one StyleIndex per style (its files' ETags) and records nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from loraledger.application.context import UseCase
from loraledger.domain.decisions import Decision, SyncOutcome
from loraledger.domain.matching import StyleCandidates, match_lora_file
from loraledger.domain.naming import ModelName, NameRejected, parse_lora_key
from loraledger.domain.observations import LoraObject
from loraledger.domain.training_version import TrainingVersion
from loraledger.domain.urls import lora_url


@dataclass(slots=True)
class SyncReport:
    """CONTRACT §4's report (rendered by api/render.py), plus the styles touched and the event count."""

    scanned: int = 0
    matched_pending: int = 0
    matched_synced: int = 0
    created: int = 0
    unchanged: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    styles: set[int] = field(default_factory=set)
    events: int = 0


class SyncCommands(UseCase):
    def observe(
        self,
        objects: Iterable[LoraObject],
        *,
        url_base: str,
        only_style: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> SyncReport:
        """Apply the two-pass matching to every listed object, one transaction per style."""
        report = SyncReport()
        by_style: dict[int, list[tuple[LoraObject, ModelName]]] = {}
        for lora in objects:
            report.scanned += 1
            try:
                model = parse_lora_key(lora.key)
            except NameRejected as rejected:
                report.skipped.append({"key": lora.key, "reason": rejected.reason})
                continue
            if only_style is None or model.style_id == only_style:
                by_style.setdefault(model.style_id, []).append((lora, model))
        for style_id in sorted(by_style):
            files = by_style[style_id]
            self.store.retrying(functools.partial(self._sync_style, style_id, files, url_base, report))
            if progress is not None:
                progress(len(files))
        return report

    def _sync_style(
        self,
        style_id: int,
        files: Sequence[tuple[LoraObject, ModelName]],
        url_base: str,
        report: SyncReport,
    ) -> None:
        index = self.store.style_index(style_id)
        fresh = [(lora, model) for lora, model in files if index.file_etags.get(lora.key) != lora.etag]
        unchanged = len(files) - len(fresh)
        if not fresh:
            report.unchanged += unchanged
            return
        versions = {v.version_name: v for v in self.store.style_versions(style_id)}
        candidates = StyleCandidates(v.facts() for v in versions.values())
        now = self.clock()
        counts = dict.fromkeys(SyncOutcome, 0)
        skipped: list[dict[str, str]] = []
        decisions: list[Decision] = []
        for lora, model in fresh:
            decided = match_lora_file(lora, model, candidates, lora_url(url_base, lora.key), None)
            decisions.append(decided.decision)
            if decided.outcome == SyncOutcome.SKIP:
                skipped.append({"key": lora.key, "reason": f"{model.version_name}: {decided.reason}"})
                continue
            name = decided.version_name
            assert name is not None
            if decided.outcome == SyncOutcome.CREATE:
                version = versions[name] = TrainingVersion.from_file(style_id, decided, lora, now)
            else:
                version = versions[name]
                version.record_file(decided, lora, now)
            counts[decided.outcome] += 1
            candidates.put(version.facts())
        # An empty file's ETag is not recorded: it is skipped (and reported) on every sync until
        # the real file replaces it, and a style that only has empty files gets no index at all.
        recorded = {lora.key: lora.etag for lora, _ in fresh if lora.size > 0}
        index.add_versions(list(versions))
        index.record_files(recorded)
        written = self.store.save_all(index if versions or recorded else None, *versions.values())
        report.matched_pending += counts[SyncOutcome.COMPLETE]
        report.matched_synced += counts[SyncOutcome.SYNCED]
        report.created += counts[SyncOutcome.CREATE]
        report.unchanged += unchanged
        report.skipped.extend(skipped)
        report.decisions.extend(decisions)
        report.events += written
        if written:
            report.styles.add(style_id)
