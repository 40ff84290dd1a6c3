"""Collecting import problems: every one keeps its file, line and kind; none is dropped."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from cointrail.errors import Problem


@dataclass(frozen=True, slots=True)
class ImportProblem:
    """A problem found while importing: `kind` groups them (address, taxonomy, schema, ...)."""

    file: str
    line: int | None
    kind: str
    message: str

    def as_problem(self) -> Problem:
        return Problem(self.file, self.line, f"[{self.kind}] {self.message}")

    def __str__(self) -> str:
        return str(self.as_problem())


@dataclass(slots=True)
class ProblemLog:
    """Problems of one file, in the order found."""

    file: str
    items: list[ImportProblem] = field(default_factory=list)

    def add(self, line: int | None, kind: str, message: str) -> None:
        self.items.append(ImportProblem(self.file, line, kind, message))

    def counts(self) -> dict[str, int]:
        return dict(Counter(p.kind for p in self.items))

    def __len__(self) -> int:
        return len(self.items)
