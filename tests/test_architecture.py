"""The structure rules a reviewer would otherwise check by hand (import rules themselves are
import-linter contracts in pyproject.toml, run by the README's test command)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLATFORM_NAMES = re.compile(r"shopify|bigcommerce", re.IGNORECASE)


def python_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("folder", ["plugin/services", "plugin/models"])
def test_no_platform_name_outside_platform_named_modules(folder):
    offending = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in python_files(folder)
        if not PLATFORM_NAMES.match(path.stem)
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if PLATFORM_NAMES.search(line)
    ]
    assert offending == []


def test_the_old_json_catch_all_is_gone_outside_migrations():
    name = "platform" + "_data"
    offending = [
        str(path.relative_to(ROOT))
        for path in python_files("plugin", "connectors", "webhooks", "domain", "tests", "bench")
        if "migrations" not in path.parts and name in path.read_text()
    ]
    assert offending == []


def test_tests_do_not_import_the_benchmarks_and_never_sleep_a_fixed_time():
    imports_bench = re.compile(r"^\s*(from|import) bench\b", re.MULTILINE)
    fixed_sleep = re.compile(r"\btime\.sleep\(|\bsleep\(\d")
    offending = [
        str(path.relative_to(ROOT))
        for path in python_files("tests")
        if path.name != "waiting.py"
        and (imports_bench.search(path.read_text()) or fixed_sleep.search(path.read_text()))
    ]
    assert offending == []
