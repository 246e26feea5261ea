"""The README's Testing section, executed verbatim.

Every ```python block in the "## Testing" section of plain/worker/README.md
starts with a comment naming its file (``# app/users/jobs.py``). The blocks are written to
those paths in a copy of tests/testing_example/ (a bare app with a User model)
and pytest runs there in a subprocess with plain.models' own rolled-back `db`
fixture, the setup a reader of the README has. The sample failure message in
the ```text block is checked against the real one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

TESTS_DIR = Path(__file__).parent
DOCUMENT = TESTS_DIR.parent / "plain" / "worker" / "README.md"
PROJECT = TESTS_DIR / "testing_example"

SAMPLE_MESSAGE_TEST = """
import re
from pathlib import Path

from plain.worker.testing import assert_enqueued

from app.users.jobs import WelcomeUserJob
from app.users.signup import sign_up


def test_the_sample_failure_message_is_real(db):
    user = sign_up("ada@example.com")
    try:
        assert_enqueued(WelcomeUserJob(user), queue="emails")
    except AssertionError as error:
        message = str(error)
    expected = Path(__file__).with_name("sample_message.txt").read_text().strip()
    user_ref = f"__plain://model/users/user/{user.id}"
    message = re.sub(r"start_at=\\S+", "start_at=<time>", message).replace(user_ref, "<user>")
    expected = re.sub(r"start_at=\\S+", "start_at=<time>", expected).replace("__plain://model/users/user/1", "<user>")
    assert message == expected
"""


def section_text() -> str:
    """The "## Testing" section, up to the next level-2 heading (so DOCUMENT can be the README)."""
    text = DOCUMENT.read_text()
    start = text.index("## Testing\n")
    end = text.find("\n## ", start + 1)
    return text[start:] if end == -1 else text[start:end]


def code_blocks(markdown: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", markdown, re.DOTALL | re.MULTILINE)


def write_example(project: Path) -> list[str]:
    """Write each python block where its first line says; return the paths."""
    paths = []
    for block in code_blocks(section_text(), "python"):
        first_line = block.splitlines()[0]
        match = re.fullmatch(r"# ([\w/]+\.py)", first_line)
        assert match, f"A python block in {DOCUMENT.name} must start with '# <path>.py', not {first_line!r}"
        path = project / match.group(1)
        assert not path.exists(), f"Two blocks write {match.group(1)}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(block)
        paths.append(match.group(1))
    return paths


def run_pytest(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """A separate pytest session: plain.pytest and plain.models' plugins, no conftest of ours.

    DATABASE_URL is this session's database; plain.models' test setup derives
    its own from it (test_<name> on PostgreSQL, in-memory on SQLite).
    """
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        cwd=cwd,
        env={**os.environ},
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_readme_testing_example_runs_verbatim(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(PROJECT, project)
    paths = write_example(project)
    assert paths == ["app/users/jobs.py", "app/users/signup.py", "tests/test_welcome.py", "tests/test_daily_digest.py"]
    [sample] = code_blocks(section_text(), "text")
    (project / "tests" / "sample_message.txt").write_text(sample)
    (project / "tests" / "test_sample_message.py").write_text(SAMPLE_MESSAGE_TEST)
    examples = sum(
        (project / "tests" / name).read_text().count("\ndef test_")
        for name in ("test_welcome.py", "test_daily_digest.py")
    )

    result = run_pytest(project, "tests")

    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(rf"^{examples + 1} passed\b", result.stdout, re.MULTILINE), result.stdout
