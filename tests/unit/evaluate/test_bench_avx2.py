"""bench/avx2.py: a copy of onnxruntime with its AVX-512 branch skipped, and the benchmarks keying it apart."""

import importlib.util
from pathlib import Path

import pytest

import bench.avx2 as avx2
from bench.common import int8_kernels

# test $0x10000,%r10d; je +14; mov %r8,%rax; not %rax; test $0xe0,%al; je ...: MLAS's AVX-512 check.
CHECK = bytes.fromhex("41f7c200000100740e4c89c048f7d0a8e00f84")


def fake_onnxruntime(root: Path, code: bytes) -> Path:
    """An installed-looking onnxruntime package whose native library is ``code``."""
    package = root / "site" / "onnxruntime"
    (package / "capi").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "capi" / "onnxruntime_pybind11_state.cpython-311-x86_64-linux-gnu.so").write_bytes(code)
    return package


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """Point bench.avx2's lookup of onnxruntime at a fake package built from the given bytes."""

    def install(code: bytes) -> Path:
        package = fake_onnxruntime(tmp_path, code)
        spec = importlib.util.spec_from_file_location("onnxruntime", package / "__init__.py",
                                                      submodule_search_locations=[str(package)])
        monkeypatch.setattr(importlib.util, "find_spec", lambda name: spec)  # bench.common's lookup of it
        monkeypatch.setattr(avx2, "cpu_flags", lambda: {"avx2", "avx512f", "avx512_vnni"})
        return package

    return install


def test_the_one_avx512_jump_becomes_unconditional_and_nothing_else_moves(installed, tmp_path):
    before, after = b"\x90" * 100, b"\xc3" * 50
    package = installed(before + CHECK + after)
    patched = avx2.forced(tmp_path / "out")
    code = patched.read_bytes()
    assert code[:100] == before and code[-50:] == after
    assert code[100 + 7] == 0xEB and code[100:107] == CHECK[:7] and code[108:-50] == CHECK[8:]
    assert (tmp_path / "out" / "onnxruntime" / avx2.MARKER).read_text() == "avx2\n"
    assert (package / "capi" / patched.name).read_bytes() == before + CHECK + after  # the installed one untouched


@pytest.mark.parametrize("times", [0, 2])
def test_another_build_of_onnxruntime_is_refused_and_nothing_is_written(installed, tmp_path, times):
    installed(b"\x90" * 10 + (CHECK + b"\x90") * times)
    with pytest.raises(SystemExit, match=f"occurs {times} times"):
        avx2.forced(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_copy_is_made_again_but_nothing_else_is_overwritten(installed, tmp_path):
    package = installed(CHECK)
    avx2.forced(tmp_path / "out")
    avx2.forced(tmp_path / "out")  # its own earlier copy is replaced
    (tmp_path / "mine" / "onnxruntime").mkdir(parents=True)
    with pytest.raises(SystemExit, match="not a copy this command made"):
        avx2.forced(tmp_path / "mine")
    with pytest.raises(SystemExit, match="not a copy this command made"):
        avx2.forced(package.parent)  # the installed package itself
    assert (tmp_path / "mine" / "onnxruntime").is_dir() and (package / "__init__.py").exists()


@pytest.mark.parametrize("flag", sorted(avx2.OTHER_INT8))
def test_a_cpu_whose_other_int8_kernels_the_copy_would_take_is_refused(installed, tmp_path, monkeypatch, flag):
    installed(CHECK)
    monkeypatch.setattr(avx2, "cpu_flags", lambda: {"avx2", "avx512f", flag})
    with pytest.raises(SystemExit, match=flag):
        avx2.forced(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_forced_copy_is_not_forced_again(installed, tmp_path):
    package = installed(CHECK)
    (package / avx2.MARKER).write_text("avx2\n")
    with pytest.raises(SystemExit, match="already a forced copy"):
        avx2.forced(tmp_path / "out")


def test_benchmarks_key_a_forced_copy_apart_from_the_host(installed):
    package = installed(CHECK)
    assert int8_kernels() != "avx2f"
    (package / avx2.MARKER).write_text("avx2\n")
    assert int8_kernels() == "avx2f"


def test_with_a_forced_copy_only_int8_passages_are_built_apart(installed, monkeypatch):
    from bench.quality.modes import index_folder

    package = installed(CHECK)
    monkeypatch.setattr("bench.quality.modes.host_kernels", lambda: "vnni")  # whatever CPU runs the test
    (package / avx2.MARKER).write_text("avx2\n")
    assert index_folder("seeds", "int8").name == "seeds-int8-avx2f"
    assert index_folder("seeds", "mpnet-int8").name == "seeds-mpnet-int8-avx2f"
    # torch's fp32 passages are the host's whatever onnxruntime picks: the host's build is scored again
    assert index_folder("seeds", "fp32").name == "seeds-fp32-vnni"
    assert index_folder("seeds", "mpnet").name == "seeds-mpnet-vnni"


def test_an_index_other_kernels_built_is_asked_as_it_is_never_built_here(tmp_path, monkeypatch):
    """``--built-by``: an index built on one CPU, asked on another. One missing stops the run; none is made."""
    from bench.quality import modes

    monkeypatch.setattr(modes, "CACHE", tmp_path)
    index_dir = modes.index_folder("seeds", "mpnet-int8", "vnni")
    assert index_dir.name == "seeds-mpnet-int8-vnni"
    assert modes.built_elsewhere(index_dir, None) is None  # this process's own index: built as usual
    with pytest.raises(SystemExit, match="no index at .*seeds-mpnet-int8-vnni.*vnni's kernels"):
        modes.built_elsewhere(index_dir, "vnni")
    with pytest.raises(SystemExit, match="no index"):
        modes.dev_figures("mpnet-int8", queries=None, built_by="vnni")
    assert not index_dir.exists()
