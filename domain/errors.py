"""The domain's refusals: a command that cannot be carried out, with one line that says why.

The HTTP edge maps them to status codes (CONTRACT §4): VersionConflict, JobIdTaken and
TransitionRefused 409, UnknownVersion 404, OwnedFieldError 422, any other LedgerError 409.
"""

from __future__ import annotations


class LedgerError(Exception):
    """A command that cannot be carried out; the message says why in one line."""


class VersionConflict(LedgerError):
    """Starting a version that is pending or completed (HTTP 409)."""


class VersionNumbersExhausted(VersionConflict):
    """No version name given, and the style already has the highest version number (HTTP 409)."""


class UnknownVersion(LedgerError):
    """A style or version with no history (HTTP 404)."""


class OwnedFieldError(LedgerError):
    """An attempt to set a field the service derives from events (HTTP 422)."""


class JobIdTaken(LedgerError):
    """RunPod answered a start with a job id that already names another attempt (HTTP 409)."""


class TransitionRefused(LedgerError):
    """A change the version's state does not allow (a guard of the aggregate; HTTP 409).

    The rules never ask for one: seeing it means a rule and the aggregate disagree.
    """


JobTaken = JobIdTaken  # the name the layering plan uses
