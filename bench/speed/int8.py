"""The int8 export on this CPU and on an emulated AVX2 one: closeness to fp32, agreement between CPUs, speed.

    python -m bench.speed.int8 [--models all-MiniLM-L6-v2 all-mpnet-base-v2] [--emulate Haswell | --avx2 DIR]
                               [--passages 40]

For each model: the export qa makes (qa/embed/export.py) encodes the check
sentences (qa/embed/calibration.py) and real passages and questions of every
real set (``--passages`` of each corpus, the first 20 queries), here and, with
``--emulate``, under ``qemu-x86_64 -cpu Haswell`` (an AVX2 CPU without
AVX-512 or VNNI: vectors bit-identical to a real one's, about ten times slower;
``apt-get install qemu-user``), or, with ``--avx2 DIR``, by the onnxruntime
copy ``python -m bench.avx2 DIR`` makes, which takes AVX2's kernels on this
host at native speed (the same vectors as qemu's Haswell: docs/quality.md, "On
other CPUs"). Printed: the worst and mean cosine to the fp32
model on each CPU, the worst cosine between the two CPUs, and, on this CPU only
(emulated time means nothing), passages a second of int8 against fp32, the two
timed in alternating rounds. The CPU each figure ran on is printed with it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import CACHE, FORCED_MARKER, RESULTS, ROOT, cpu_class, log, table
from qa.embed import calibration
from qa.embed.export import export_onnx
from qa.embed.load import _folder as model_folder
from qa.embed.onnx import OnnxEmbedder

SETS = ["msmarco-dl19-5k", "dbpedia-entity-5k", "nq-clapnq-5k", "scifact-2k"]
SHARED = ROOT.parent / "shared" / "eval"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["all-MiniLM-L6-v2"])
    parser.add_argument("--emulate", metavar="CPU", help="also encode under qemu-x86_64 -cpu CPU (Haswell: AVX2)")
    parser.add_argument("--avx2", type=Path, metavar="DIR",
                        help="also encode with the onnxruntime copy `python -m bench.avx2 DIR` made (AVX2's kernels)")
    parser.add_argument("--passages", type=int, default=40, help="passages of each real set's corpus")
    parser.add_argument("--rounds", type=int, default=3, help="alternating speed rounds (best kept)")
    parser.add_argument("--out", type=Path, default=RESULTS / "int8.json")
    args = parser.parse_args()
    if args.emulate and args.avx2:
        parser.error("--emulate and --avx2 are two ways to one other CPU: give one")
    if args.avx2 and not (args.avx2 / "onnxruntime" / FORCED_MARKER).is_file():
        parser.error(f"{args.avx2} holds no onnxruntime copy made by `python -m bench.avx2 {args.avx2}`")
    other = args.emulate or ("AVX2's kernels (bench.avx2)" if args.avx2 else None)
    texts = sample_texts(args.passages)
    figures = {"cpu": cpu_class(), "emulated": args.emulate, "avx2 copy": str(args.avx2) if args.avx2 else None,
               "texts": len(texts), "models": {}}
    rows = []
    for name in args.models:
        folder, cache = model_folder(name), CACHE / "int8"
        export_onnx(folder, cache, "int8")
        export_onnx(folder, cache, "fp32")
        int8 = OnnxEmbedder(folder, cache, model_name=name, encoder="int8", workers=1)
        fp32 = OnnxEmbedder(folder, cache, model_name=name, encoder="fp32", workers=1)
        log(f"{name}: encoding {len(texts)} texts here ({figures['cpu']})")
        exact, here = fp32.encode(texts), int8.encode(texts)
        found = {"here": closeness(here, exact), "check here": int8.fidelity}
        if other:
            log(f"{name}: encoding them with {other}")
            there = elsewhere(args.emulate, args.avx2, folder, cache, name, texts)
            found["other CPU"] = closeness(there["vectors"], exact)
            found["check other CPU"] = there["fidelity"]
            found["between CPUs"] = round(float((there["vectors"] * here).sum(axis=1).min()), 5)
        found["speed"] = speed(int8, fp32, texts, args.rounds)
        figures["models"][name] = found
        rows.append([name, f"{found['here']['worst']:.4f} / {found['here']['mean']:.4f}",
                     f"{found['other CPU']['worst']:.4f} / {found['other CPU']['mean']:.4f}" if other else "-",
                     f"{found['between CPUs']:.5f}" if other else "-",
                     f"{found['speed']['int8']:.1f} / {found['speed']['fp32']:.1f}"])
    print(table(f"int8 against fp32: cosine worst / mean over {len(texts)} texts; speed on {figures['cpu']}",
                ["model", f"here ({figures['cpu']})", other or "other CPU", "between CPUs",
                 "passages/s int8 / fp32 (here)"], rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"\nfigures written to {args.out}")


def sample_texts(per_set: int) -> list[str]:
    """The check sentences, then each real set's first passages and first 20 queries."""
    texts = list(calibration.CHECK)
    for name in SETS:
        folder = SHARED / name
        if not (folder / "corpus.jsonl").is_file():
            continue
        with open(folder / "corpus.jsonl", encoding="utf-8") as corpus:
            for _, line in zip(range(per_set), corpus):
                record = json.loads(line)
                texts.append(f"{record.get('title') or ''}\n\n{record['text']}".strip())
        with open(folder / "queries.jsonl", encoding="utf-8") as queries:
            texts += [json.loads(line)["text"] for _, line in zip(range(20), queries)]
    return texts


def closeness(vectors: np.ndarray, exact: np.ndarray) -> dict:
    cosines = (vectors * exact).sum(axis=1)
    return {"worst": round(float(cosines.min()), 5), "mean": round(float(cosines.mean()), 5),
            "below 0.99": int((cosines < 0.99).sum())}


def elsewhere(cpu: str | None, avx2: Path | None, folder: Path, cache: Path, name: str, texts: list[str]) -> dict:
    """Load the export (its own check included) and encode ``texts`` under qemu's ``cpu``, or with the onnxruntime
    copy in ``avx2``."""
    with tempfile.TemporaryDirectory() as work:
        (Path(work) / "texts.json").write_text(json.dumps(texts), encoding="utf-8")
        script = (
            "import json, sys, numpy as np\n"
            "from qa.embed.onnx import OnnxEmbedder\n"
            f"e = OnnxEmbedder({str(folder)!r}, {str(cache)!r}, model_name={name!r}, workers=1)\n"
            f"texts = json.load(open({str(Path(work) / 'texts.json')!r}, encoding='utf-8'))\n"
            f"np.save({str(Path(work) / 'v.npy')!r}, e.encode(texts))\n"
            "print(e.fidelity)\n"
        )
        command = ([sys.executable] if avx2 else ["qemu-x86_64", "-cpu", cpu, sys.executable]) + ["-c", script]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(avx2), str(ROOT)])} if avx2 else None
        done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
        if done.returncode != 0:
            raise SystemExit(f"the encoding on the other CPU failed:\n{done.stderr[-2000:]}")
        return {"vectors": np.load(Path(work) / "v.npy"), "fidelity": float(done.stdout.split()[-1])}


def speed(int8: OnnxEmbedder, fp32: OnnxEmbedder, texts: list[str], rounds: int) -> dict:
    """Texts a second, int8 and fp32 in alternating rounds on one thread (best round kept)."""
    best = {"int8": 0.0, "fp32": 0.0}
    for _ in range(rounds):
        for label, embedder in (("int8", int8), ("fp32", fp32)):
            began = time.perf_counter()
            embedder.encode(texts)
            best[label] = max(best[label], len(texts) / (time.perf_counter() - began))
    return {k: round(v, 1) for k, v in best.items()}


if __name__ == "__main__":
    main()
