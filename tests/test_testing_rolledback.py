"""test_testing_helpers.py again, under plain.models' rolled-back `db` fixture.

This suite's conftest.py replaces `db` with a committed-data fixture. Users of
plain.worker.testing mostly have plain.models' own, which wraps each test in
a transaction that is rolled back. A subprocess session with --noconftest
runs the helper tests with that fixture, against a test database plain.models
derives from this session's (test_<name> on PostgreSQL, in-memory on SQLite).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from test_testing_example import run_pytest

TESTS_DIR = Path(__file__).parent
HELPER_TESTS = "test_testing_helpers.py"


def test_the_helper_tests_run_with_plain_models_db_fixture():
    plan = run_pytest(TESTS_DIR, "--noconftest", "--fixtures-per-test", f"{HELPER_TESTS}::test_drain_limits_queues")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "plain/models/test/pytest.py" in plan.stdout.split("db --", 1)[1].splitlines()[0], plan.stdout

    result = run_pytest(TESTS_DIR, "--noconftest", HELPER_TESTS)

    count = (TESTS_DIR / HELPER_TESTS).read_text().count("\ndef test_")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(rf"^{count} passed\b", result.stdout, re.MULTILINE), result.stdout


def test_a_conftest_can_import_the_helpers_before_plain_is_set_up():
    """pytest imports conftest.py before plain.pytest calls plain.runtime.setup()."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import plain.worker.testing, plain.runtime; assert not plain.runtime._is_setup_complete",
        ],
        cwd=TESTS_DIR,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
