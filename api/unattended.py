"""What `serve` runs by itself (CONTRACT §9): the S3 events queue's consumer, a full sync every
LORALEDGER_SYNC_EVERY and a reconcile every LORALEDGER_RECONCILE_EVERY, on the leader only.

Every `serve` process (and every worker of one) asks for leadership every LEADER_CHECK_SECONDS;
the one that holds the lock (adapters/leader.py) runs the consumer and the schedules, and stops
them the moment it finds the lock lost. The runs go through the same facade methods as the routes
and commands, so each is recorded, counted and logged like a manual one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from loraledger.adapters.leader import LeaderLock, leader_lock_for
from loraledger.api.facade import Service
from loraledger.api.outcomes import log_outcome

log = logging.getLogger("loraledger.unattended")

LEADER_CHECK_SECONDS = 2.0  # a follower takes over at most this long after the lock is free
QUEUE_WAIT_SECONDS = 2  # one long poll; also how long stopping may wait for it


class Unattended:
    def __init__(self, service: Service, lock: LeaderLock | None = None) -> None:
        self.service = service
        self.settings = service.settings
        self.lock = lock or leader_lock_for(self.settings.database_url)
        self.leading = False
        self._stop = threading.Event()
        self._work_stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._leader_thread = threading.Thread(target=self._lead, name="loraledger-leader", daemon=True)

    def start(self) -> None:
        if self._has_work():
            self._leader_thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._stop_work()
        if self._leader_thread.is_alive():
            self._leader_thread.join(timeout=QUEUE_WAIT_SECONDS + 5)
        self.lock.release()

    def _has_work(self) -> bool:
        return bool(self._schedules()) or self.settings.s3_events_queue_url is not None

    def _lead(self) -> None:
        while not self._stop.is_set():
            if not self.leading and self.lock.acquire():
                self.leading = True
                log_outcome("leader", "leading", style_id=None, version=None)
                self._start_work()
            elif self.leading and not self.lock.held():
                self.leading = False
                log_outcome("leader", "lost", style_id=None, version=None, level=logging.WARNING)
                self._stop_work()
            self._stop.wait(LEADER_CHECK_SECONDS)

    def _start_work(self) -> None:
        self._work_stop = threading.Event()
        consumer = self.service.queue_consumer()
        if consumer is not None:
            consumer.wait_seconds = QUEUE_WAIT_SECONDS
            self._spawn("loraledger-s3-events", consumer.run)
        schedules = self._schedules()
        if schedules:
            self._spawn("loraledger-schedules", lambda stop: run_schedules(schedules, stop))

    def _spawn(self, name: str, target: Callable[[threading.Event], None]) -> None:
        thread = threading.Thread(target=target, args=(self._work_stop,), name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _stop_work(self) -> None:
        self._work_stop.set()
        for thread in self._threads:
            thread.join(timeout=QUEUE_WAIT_SECONDS + 5)
        self._threads = []

    def _schedules(self) -> list[Schedule]:
        settings = self.settings
        schedules = []
        if settings.sync_every > timedelta(0) and settings.s3_bucket:
            schedules.append(Schedule("sync", settings.sync_every, self._sync))
        if (
            settings.reconcile_every > timedelta(0)
            and settings.runpod_endpoint_id
            and settings.runpod_api_key
        ):
            schedules.append(Schedule("reconcile", settings.reconcile_every, self._reconcile))
        return schedules

    def _sync(self) -> None:
        report = self.service.sync()
        log_outcome(
            "sync",
            "scheduled-run",
            style_id=None,
            version=None,
            scanned=report.scanned,
            created=report.created,
            completed=report.matched_pending,
        )

    def _reconcile(self) -> None:
        report = self.service.reconcile(self.settings.effective_reconcile_after)
        log_outcome("reconcile", "scheduled-run", style_id=None, version=None, checked=report.checked)


class Schedule:
    """A run every `every`, the first one `every` after leadership began."""

    def __init__(self, kind: str, every: timedelta, run: Callable[[], None]) -> None:
        self.kind = kind
        self.every = every.total_seconds()
        self.run = run
        self.due = time.monotonic() + self.every


def run_schedules(schedules: list[Schedule], stop: threading.Event) -> None:
    """Each schedule's runs, one at a time; a run that fails is logged and the next one comes."""
    while not stop.is_set():
        now = time.monotonic()
        for schedule in schedules:
            if now < schedule.due or stop.is_set():
                continue
            try:
                schedule.run()
            except Exception as error:  # a failed run is counted by its facade method; go on
                log.error("scheduled %s failed: %s", schedule.kind, error)
            schedule.due = time.monotonic() + schedule.every
        next_due = min(schedule.due for schedule in schedules)
        stop.wait(max(0.05, next_due - time.monotonic()))
