"""Prometheus' text exposition format (version 0.0.4): metric families rendered for a scrape.

A ``Family`` is one metric name with its type (counter, gauge or histogram), its help line and
its samples (label values, value; a histogram's with the suffix of its line: ``_bucket``,
``_sum``, ``_count``). Label values are escaped as the format asks (backslash, double quote,
line feed); names are the caller's, checked against the format's pattern.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


@dataclass
class Family:
    """One metric: ``kind`` is ``counter``, ``gauge`` or ``histogram``; ``samples`` are
    (labels, value, suffix of the sample's name)."""

    name: str
    kind: str
    help: str
    samples: list[tuple[dict[str, str], float, str]] = field(default_factory=list)

    def add(self, value: float, suffix: str = "", **labels: str) -> None:
        self.samples.append((labels, value, suffix))


def render(families: list[Family], common: dict[str, str] | None = None) -> bytes:
    """The scrape's body: every family with its HELP and TYPE lines, ``common`` labels first on
    every sample. A family without samples is left out."""
    lines: list[str] = []
    for family in families:
        if not family.samples:
            continue
        if not _NAME.match(family.name):
            raise ValueError(f"bad metric name {family.name!r}")
        help_text = family.help.replace("\\", "\\\\").replace("\n", "\\n")
        lines.append(f"# HELP {family.name} {help_text}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for labels, value, suffix in family.samples:
            merged = {**(common or {}), **labels}
            lines.append(f"{family.name}{suffix}{_labels(merged)} {_number(value)}")
    return ("\n".join(lines) + "\n").encode() if lines else b""


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    parts = []
    for key, value in labels.items():
        if not _LABEL.match(key):
            raise ValueError(f"bad label name {key!r}")
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        parts.append(f'{key}="{escaped}"')
    return "{" + ",".join(parts) + "}"


def _number(value: float) -> str:
    if isinstance(value, int) or (math.isfinite(value) and value == int(value)):
        return str(int(value))
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))
