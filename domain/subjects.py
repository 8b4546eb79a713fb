"""What a training version belongs to: a subject, a (kind, id) pair (CONTRACT §8).

Styles and actors are trained the same way; their ids are separate number spaces, so style 6
and actor 6 are different subjects and nothing is ever matched across kinds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SubjectKind = Literal["style", "actor"]
STYLE: SubjectKind = "style"
ACTOR: SubjectKind = "actor"
SUBJECT_KINDS: tuple[SubjectKind, ...] = (STYLE, ACTOR)


def subject_kind(text: str) -> SubjectKind:
    """`style` or `actor` as a SubjectKind; ValueError for any other word."""
    for kind in SUBJECT_KINDS:
        if text == kind:
            return kind
    raise ValueError(f"{text!r} is not a subject kind (style or actor)")


@dataclass(frozen=True, order=True, slots=True)
class Subject:
    """One style or one actor; ordered by kind (actors first, alphabetically), then by id."""

    kind: SubjectKind
    id: int

    def __str__(self) -> str:
        return f"{self.kind} {self.id}"

    @property
    def path(self) -> str:
        """How the command line and the logs write it: `style/1`, `actor/6`."""
        return f"{self.kind}/{self.id}"


class StyleKindNotStored:
    """For an event with a `kind` field defaulting to `style`: a style's event is stored as it was
    before actors existed (no `kind` member), so the same commands still record the same bytes; read
    back, the missing member is the class default, `style`. An actor's event stores its kind."""

    def __post_init__(self) -> None:
        super().__post_init__()  # type: ignore[misc]
        if self.__dict__.get("kind") == STYLE:
            del self.__dict__["kind"]
