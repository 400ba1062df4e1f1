"""Config errors that say where (file:line:col, dotted path) and what was expected."""

from __future__ import annotations

from dataclasses import dataclass


class ConfigError(ValueError):
    """A config value or file is wrong; the message says where and what was expected."""


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a config file: where it is and what is wrong."""

    path: str  # dotted path, e.g. "steps[1].napari_streaming.colormap"
    message: str  # what was expected, what was found
    file: str = ""
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        where = self.file
        if self.line:
            where = f"{where}:{self.line}:{self.column}"
        prefix = f"{where}: " if where else ""
        path = f"{self.path}: " if self.path else ""
        return f"{prefix}{path}{self.message}"


class ConfigFileError(ConfigError):
    """Every problem found in one config file, reported together."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(issue) for issue in issues))
