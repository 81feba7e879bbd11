"""`pip install .` (not editable) gives a working qa: templates, static files and every package inside."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json, sys
from pathlib import Path
import qa, qa.web
site = Path(sys.argv[1]).resolve()
assert Path(qa.__file__).resolve().is_relative_to(site), qa.__file__
app = qa.web.create_app({"TESTING": True, "QA_INDEX": sys.argv[2], "QA_MODEL": "hashing"})
client = app.test_client()
page = client.get("/?q=INF+Treaty")
assert page.status_code == 200 and b"<mark>" in page.data, page.status_code
assert client.get("/static/style.css").status_code == 200
print(json.dumps(client.get("/api/search?q=INF+Treaty&k=1").get_json()["results"][0]["source"]))
"""


def test_the_wheel_installs_and_answers_a_question(tmp_path):
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("qa-*.whl")
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
        capture_output=True, text=True, timeout=300,
    )
    assert installed.returncode == 0, installed.stderr
    assert (site / "qa" / "web" / "templates" / "index.html").is_file() and (site / "qa" / "py.typed").is_file()
    assert not (site / "qa" / "web").is_symlink()
    # The installed copy first on the path; its dependencies come from this environment.
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "seeds", docs)
    run = [sys.executable, "-m", "qa"]
    indexed = subprocess.run([*run, "index", "--docs", str(docs), "--index", str(tmp_path / "index"), "--model", "hashing"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert indexed.returncode == 0, indexed.stderr
    probe = subprocess.run([sys.executable, "-c", PROBE, str(site), str(tmp_path / "index")],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == '"004_027c9bdda43207c8.txt"'
