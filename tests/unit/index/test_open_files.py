"""A process out of file descriptors is told so, not told that its index is damaged."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_running_out_of_descriptors_is_not_called_corruption(tmp_path, embedder):
    from qa.indexing import build

    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(40):
        (docs / f"d{i}.txt").write_text(f"Doc {i}\n\nText number {i}.", encoding="utf-8")
    build(docs, tmp_path / "index", embedder, shards=64)
    script = textwrap.dedent(f"""
        import resource
        from pathlib import Path
        from qa import index
        from qa.errors import IndexUnavailable
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))  # two descriptors a shard cannot fit
        try:
            index.open_index(Path({str(tmp_path / "index")!r}))
        except IndexUnavailable as exc:
            print(exc)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert "too many open files (limit 64)" in out.stdout, out.stdout + out.stderr
    assert "corrupt" not in out.stdout and "--rebuild" not in out.stdout


def test_the_cli_raises_its_soft_limit_to_the_hard_one():
    script = textwrap.dedent("""
        import resource
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
        from qa.index import raise_open_files_limit
        raise_open_files_limit()
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        print(soft == hard or soft == 1 << 20)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "True", out.stderr
