"""Every example in the README runs as written, with the real model, and prints what the README shows.

A ``console`` block is a session: each ``$`` line runs in a fresh workspace that
holds a copy of the seeds (the README's commands are run from the repository
root), and the lines after it are its expected output, where ``...`` stands for
any text within a line, or for any number of lines when alone on one. Commands
that ask ``localhost:8000`` ask a ``qa serve`` started on the workspace. A
``python`` block is run in the workspace.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from qa import testing

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DEV = ROOT.parent / "shared" / "eval" / "dev.jsonl"
_BLOCK = re.compile(r"^```(console|python)\n(.*?)^```", re.M | re.S)


def blocks(kind: str) -> list[str]:
    return [body for lang, body in _BLOCK.findall((ROOT / "README.md").read_text(encoding="utf-8")) if lang == kind]


def session(block: str) -> list[tuple[str, list[str]]]:
    """Split a console block into (command, expected output lines)."""
    steps: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps:
            steps[-1][1].append(line)
    return steps


#: How far a score the README shows (``[0.774]``) may be from the one printed. Scores are cosines of int8
#: vectors, which an AVX2 and a VNNI CPU give to within cosine 0.99994 of each other (tests/unit/embed/
#: test_other_cpus.py; the README's first score moved by under 0.001 between them, docs/quality.md); the
#: ranking itself is compared exactly. 0.005 leaves room for onnxruntime's next release, not for a new model.
SCORE_TOLERANCE = 0.005
_SCORE = re.compile(r"\[(\d\.\d{3})\]")
_PLACE = "\ue000"  # where a score stood, while the line is escaped


def matches(expected: list[str], actual: list[str]) -> bool:
    """Whether ``actual`` lines fit ``expected``, ``...`` matching any text (alone on a line: any lines),
    a score in brackets matching one within ``SCORE_TOLERANCE``."""
    if not expected:
        return not actual
    head, rest = expected[0], expected[1:]
    if head == "...":
        return any(matches(rest, actual[i:]) for i in range(len(actual) + 1))
    if not actual:
        return False
    shown = [float(score) for score in _SCORE.findall(head)]
    pattern = ".*?".join(re.escape(part) for part in _SCORE.sub(_PLACE, head).split("..."))
    found = re.fullmatch(pattern.replace(_PLACE, r"\[(\d\.\d{3})\]"), actual[0])
    if found is None or any(abs(float(got) - want) > SCORE_TOLERANCE for got, want in zip(found.groups(), shown)):
        return False
    return matches(rest, actual[1:])


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("readme")
    shutil.copytree(ROOT / "seeds", root / "seeds")
    if DEV.is_file():
        shutil.copy(DEV, root / "questions.jsonl")
    return root


def run(command: str, cwd: Path, port: int | None) -> list[str]:
    if port is not None:
        command = command.replace("localhost:8000", f"127.0.0.1:{port}")
    env = testing.qa_env(PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    done = subprocess.run(command, shell=True, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"$ {command}\n{done.stdout}\n{done.stderr}"
    return done.stdout.splitlines()


def test_every_console_example_prints_what_the_readme_shows(workspace):
    server = None
    try:
        for block in blocks("console"):
            for command, expected in session(block):
                if "qa tune" in command and not (workspace / "questions.jsonl").is_file():
                    pytest.skip(f"no judged questions beside the repository ({DEV}) for `{command}`")
                if "localhost:8000" in command and server is None:
                    server = testing.Server(workspace / "seeds", workspace / "index", workspace / "serve.log",
                                            env=testing.qa_env(), cwd=workspace)
                    server.wait_ready()
                actual = run(command, workspace, server.port if server else None)
                assert matches(expected, actual), f"$ {command}\nexpected:\n" + "\n".join(expected) + \
                    "\nprinted:\n" + "\n".join(actual)
    finally:
        if server is not None:
            server.stop()


def test_the_python_example_runs(workspace):
    (example,) = blocks("python")
    done = subprocess.run([sys.executable, "-c", example], cwd=workspace, env=testing.qa_env(), capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    assert "004_027c9bdda43207c8.txt" in done.stdout and "[]" in done.stdout


def test_the_two_commands_are_the_ones_ci_and_a_user_run():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/qa serve" in readme
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()[-1]
    assert ci in readme.splitlines()
