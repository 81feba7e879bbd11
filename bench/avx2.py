"""A copy of onnxruntime that multiplies int8 with its AVX2 kernels on an AVX-512 host, at native speed.

    python -m bench.avx2 OUT
    PYTHONPATH=OUT python -m bench.quality.modes --builds int8 ...

An AVX2-only CPU (most laptops, many VMs) gets other int8 vectors than an AVX-512
VNNI one: onnxruntime's MLAS library picks its matrix kernels by CPUID when it
starts, and AVX2's saturate where VNNI's do not. ``qemu-x86_64 -cpu Haswell``
shows what such a CPU computes, but embeds about 20 passages a minute: a whole
judged set takes a day. This copies the installed onnxruntime package into
``OUT/onnxruntime`` and changes one jump in its MLAS start-up so it never takes
the AVX-512 branch: every other check stays, so the host's AVX2 and FMA3 kernels
are the ones picked, as on an AVX2-only CPU. Only onnxruntime's own kernels
change; numpy, FAISS and torch still run the host's. A host with AVX-VNNI or
AMX is refused: the checks that stay would pick those kernels instead.

The jump is found by its bytes, which belong to one build of onnxruntime
(1.32.0's manylinux x86-64 wheel): on any other, or if they occur other than
once, nothing is written and the command says so. Whether the copy computes
what an AVX2 CPU does is shown, not assumed: build the seeds with it and under
qemu, and compare the two with ``python -m bench.quality.vectors``
(docs/quality.md, "On other CPUs"). ``bench.common.int8_kernels`` reads the
marker this writes, so benchmarks key the copy's indexes as AVX2's.
"""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

from bench.common import FORCED_MARKER as MARKER
from bench.common import cpu_flags, onnxruntime_package

#: In MLAS_PLATFORM's constructor: ``test $0x10000,%r10d`` (CPUID 7 EBX, AVX512F), ``je`` past the AVX-512
#: branch, then the XCR0 test of the AVX-512 state. The ``je`` (0x74) becomes ``jmp`` (0xEB).
AVX512_CHECK = re.compile(rb"\x41\xf7\xc2\x00\x00\x01\x00(\x74).\x4c\x89\xc0\x48\xf7\xd0\xa8\xe0\x0f\x84", re.S)
JMP = b"\xeb"
#: CPU flags (as /proc/cpuinfo names them) whose int8 kernels MLAS checks for outside the AVX-512 branch.
OTHER_INT8 = frozenset({"avx_vnni", "avx_vnni_int8", "amx_int8"})


def forced(out: Path) -> Path:
    """Write ``out/onnxruntime``, the installed package with its AVX-512 branch skipped; return the patched file."""
    package = onnxruntime_package()
    if package is None:
        raise SystemExit("onnxruntime is not installed")
    if (package / MARKER).exists():
        raise SystemExit(f"{package} is already a forced copy: run this with the installed onnxruntime")
    native = next(package.glob("capi/onnxruntime_pybind11_state*.so"), None)
    if native is None:
        raise SystemExit(f"no onnxruntime_pybind11_state library under {package / 'capi'}")
    code = bytearray(native.read_bytes())
    found = list(AVX512_CHECK.finditer(code))
    if len(found) != 1:
        raise SystemExit(f"{native.name}: the AVX-512 check occurs {len(found)} times, not once: this onnxruntime "
                         "is not the build bench.avx2 knows (1.32.0, manylinux x86-64); nothing written")
    other = sorted(OTHER_INT8 & cpu_flags())
    if other:
        raise SystemExit(f"this CPU has {', '.join(other)}: onnxruntime would take those kernels, not AVX2's")
    code[found[0].start(1)] = JMP[0]
    target = out / "onnxruntime"
    if target.exists():
        if target.resolve() == package.resolve() or not (target / MARKER).exists():
            raise SystemExit(f"{target} exists and is not a copy this command made: choose another folder")
        shutil.rmtree(target)  # an earlier copy, made again
    shutil.copytree(package, target, ignore=shutil.ignore_patterns("__pycache__"))
    patched = target / native.relative_to(package)
    patched.write_bytes(bytes(code))
    (target / MARKER).write_text("avx2\n")
    return patched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to put the onnxruntime copy in (put it first on PYTHONPATH)")
    args = parser.parse_args()
    patched = forced(args.out)
    print(f"wrote {patched}\nuse it with: PYTHONPATH={args.out.resolve()} python -m ...")


if __name__ == "__main__":
    main()
