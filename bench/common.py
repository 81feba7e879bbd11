"""What every benchmark shares: where things are, and small helpers for timing, memory and tables."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

from qa.testing import percentile

ROOT = Path(__file__).resolve().parents[1]
#: Downloaded packages, generated query sets, indexes: one cache for every benchmark (git-ignored).
CACHE = ROOT / "bench" / ".cache"
#: JSON figures each benchmark writes (git-ignored).
RESULTS = ROOT / "bench" / "results"
SEEDS = ROOT / "seeds"
#: The judged development questions over the seeds, beside this repository.
DEV = ROOT.parent / "shared" / "eval" / "dev.jsonl"
#: Real entity queries with graded judgments (BEIR format), beside this repository.
DBPEDIA = ROOT.parent / "shared" / "eval" / "dbpedia-entity-5k"

T0 = time.monotonic()


def log(message: str) -> None:
    """Print a progress line on stderr with the seconds since the benchmark started."""
    print(f"[{time.monotonic() - T0:7.1f}s] {message}", file=sys.stderr, flush=True)


def cpu_class() -> str:
    """The CPU a figure ran on, as int8 kernels tell CPUs apart: its model name and AVX-512 VNNI, AVX-512, AVX2 or
    neither (onnxruntime multiplies int8 with VNNI dot products, else AVX2's saturating ones). The features are
    the ones CPUID reports, as numpy reads them: under qemu, the emulated CPU's."""
    model = cpuinfo("model name") or platform.processor() or platform.machine()
    tag = int8_kernels()
    kind = _KERNELS.get(tag, tag)
    # qemu-user shows the host's /proc/cpuinfo: a host flag CPUID does not report means the CPU is emulated.
    emulated = " (emulated)" if tag not in ("vnni", "avx2f") and "avx512_vnni" in cpu_flags() else ""
    return f"{model}, {os.cpu_count()} CPUs, {kind}{emulated}"


def cpuinfo(field: str) -> str:
    """The first value of ``field`` in /proc/cpuinfo ("model name", "flags"), or "" where there is none."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == field:
                return value.strip()
    return ""


def cpu_flags() -> set[str]:
    """The CPU's flags as /proc/cpuinfo names them (the host's, even under qemu-user); empty where there is none."""
    return set(cpuinfo("flags").split())


def onnxruntime_package() -> Path | None:
    """The folder of the onnxruntime Python would import, found and not imported (int8 runs load it later)."""
    spec = importlib.util.find_spec("onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


#: CPUID flags as numpy names them, the short tag of the int8 kernels onnxruntime picks for them, and their label.
_FLAGS = (("AVX512VNNI", "vnni"), ("AVXVNNI", "avxvnni"), ("AVX512F", "avx512"), ("AVX2", "avx2"))
#: The file bench.avx2 writes into its onnxruntime copy: benchmarks run with that copy key their builds "avx2f".
FORCED_MARKER = "FORCED_INT8_KERNELS"
_KERNELS = {"vnni": "AVX-512 VNNI", "avxvnni": "AVX-VNNI", "avx512": "AVX-512", "avx2": "AVX2",
            "avx2f": "AVX2 kernels forced (bench.avx2)"}


def int8_kernels() -> str:
    """A short tag of the instruction set int8 vectors depend on ("vnni", "avx2", ...; else the machine's name).

    Benchmarks key what they build by it, so a run on an emulated AVX2 CPU never
    scores the indexes this host built. An onnxruntime copy made by bench.avx2
    is "avx2f": AVX2's kernels on this host, kept apart from an emulated CPU's.
    """
    package = onnxruntime_package()
    if package is not None and (package / FORCED_MARKER).exists():
        return "avx2f"
    return host_kernels()


def host_kernels() -> str:
    """The tag of the CPU's own instruction set, as CPUID reports it, whatever onnxruntime was made to pick."""
    from numpy._core._multiarray_umath import __cpu_features__ as features

    return next((tag for flag, tag in _FLAGS if features.get(flag)), platform.machine())


def loadavg() -> list[float]:
    """The machine's 1, 5 and 15 minute load: figures from a loaded machine are not comparable."""
    return [round(x, 2) for x in os.getloadavg()]


def file_mib(path: Path) -> float:
    return round(path.stat().st_size / 2**20, 2) if path.exists() else 0.0


def table(title: str, header: list[str], rows: list[list]) -> str:
    cells = [[("" if c is None else (f"{c:.2f}" if isinstance(c, float) else str(c))) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(header)]
    lines = [f"\n## {title}", "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += ["| " + " | ".join(c.rjust(w) for c, w in zip(r, widths)) + " |" for r in cells]
    return "\n".join(lines)



def stats(values) -> dict:
    """Count, nearest-rank p50/p95/p99, max and mean of ``values``, to two decimals (None when empty)."""
    if not len(values):
        return {"n": 0, **dict.fromkeys(("p50", "p95", "p99", "max", "mean"))}
    return {
        "n": len(values),
        **{f"p{q}": round(percentile(values, q), 2) for q in (50, 95, 99)},
        "max": round(float(max(values)), 2),
        "mean": round(float(np.mean(values)), 2),
    }



def own_rss_mib() -> dict:
    """This process: current VmRSS and peak (getrusage ru_maxrss, KiB on Linux)."""
    current = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                current = int(line.split()[1]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"current_mib": round(current, 1) if current else None, "peak_mib": round(peak, 1)}

