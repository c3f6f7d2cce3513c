"""docs/configuration.md stays in step with the schema: every key, its default, its status."""

from __future__ import annotations

import pathlib

import pytest

from config.fields import field_specs
from config.reference import BROKER_KEYS, NAMESRV_KEYS, replace_generated
from config.schema import BrokerConfig, NamesrvConfig

pytestmark = pytest.mark.timeout(30)

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_every_key_has_a_reference_entry() -> None:
    assert list(NAMESRV_KEYS) == list(field_specs(NamesrvConfig))
    assert list(BROKER_KEYS) == list(field_specs(BrokerConfig))


def test_generated_tables_are_current() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert replace_generated(text) == text, (
        "docs/configuration.md is stale: run python -m config.reference docs/configuration.md"
    )


def test_doc_names_every_key() -> None:
    text = DOC.read_text(encoding="utf-8")
    for key in [*field_specs(NamesrvConfig), *field_specs(BrokerConfig)]:
        assert f"| `{key}` |" in text, key
