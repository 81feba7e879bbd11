"""Export a sentence-transformers model to ONNX once, int8-quantized or not, and cache the file.

The model is exported with torch's ONNX exporter and, for ``int8``, smoothed
(qa/embed/smooth.py) and its weights quantized (dynamic quantization, one scale
per output channel), once per model, onnxruntime version and export settings;
the result is cached on disk (an index folder's ``models/``) and reused, so
encoding needs no torch afterwards (qa/embed/onnx.py). A copy is kept in the
user's cache (``shared_exports``) with the digest of each file, so a new index
copies a whole export instead of making it again; a copy that does not match
its digest is passed by. Work a killed export left (its private folder, a
half-copied file) carries the process id and is removed by the next export
into that folder once the process is gone and the work has lain an hour.
Beside an int8 file lie the fp32 model's vectors of ``calibration.CHECK``,
which every CPU that loads the export checks it against. Nothing here
downloads: the model, its tokenizer and its weights come from a local
sentence-transformers folder.
"""

from __future__ import annotations

import hashlib
import re
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from qa.embed import calibration
from qa.embed.base import ENCODERS
from qa.embed.pairs import PAIR_LIMIT, STEPS, bound_pairs
from qa.embed.smooth import smooth
from qa.errors import ModelUnavailable

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install onnxruntime onnx"

#: Bump when the export recipe changes in a way the settings below do not capture.
#: 2: smoothing, unsigned weights, the fp32 check vectors beside the file.
RECIPE_VERSION = 2

#: Everything that shapes the exported file besides the weights and the tool versions.
EXPORT_SETTINGS = {
    "recipe": RECIPE_VERSION,
    "exporter": "torchscript",  # torch.onnx.export(dynamo=False)
    "opset": 17,
    "attn_implementation": "eager",
    "inputs": ["input_ids", "attention_mask", "token_type_ids"],
    "output": "last_hidden_state",
}


def export_settings(config: dict) -> dict:
    """Return the export settings for a model's ``config.json``: models without token types (MPNet) take
    two inputs, not three (a BERT's settings, and so its cached exports, are unchanged)."""
    if int(config.get("type_vocab_size", 0)) > 0:
        return EXPORT_SETTINGS
    return {**EXPORT_SETTINGS, "inputs": ["input_ids", "attention_mask"]}


#: Dynamic quantization settings, chosen so that an export's vectors are the same, or as close, on every CPU.
#:
#: onnxruntime multiplies uint8 activations by int8 weights with VNNI's exact dot product
#: where the CPU has it, and with AVX2's ``vpmaddubsw`` elsewhere, which adds pairs of
#: products into 16 bits and saturates. The old export (8-bit weights, nothing smoothed)
#: kept cosine 0.98 to fp32 on a VNNI CPU and 0.978 on an AVX2 one (emulated), and the two
#: ranked differently. Now, for every model: smoothing (qa/embed/smooth.py, alpha 0.8, the
#: best of 0.5-0.9 for MiniLM and MPNet alike), only MatMuls quantized (the embedding
#: tables stay fp32), and each layer's feed-forward output projection kept in fp32 (it
#: reads GELU's outliers; without it the question "?" fell to 0.975-0.985). BERT models
#: (all-MiniLM-L6-v2) take 7-bit weights (``reduce_range``): no pair of products can
#: saturate, so AVX2 and VNNI give the same vectors (cosine 0.99994 between them) and
#: the worst check sentence keeps 0.995 to fp32 on both. MPNet loses too much with 7 bits
#: (0.981) and keeps 8, quantized so that no pair of its weights can saturate
#: (``bound_pairs``, qa/embed/pairs.py): the same vectors on both CPUs to 0.9997, where
#: plain 8-bit weights moved a vector by up to 0.006 on AVX2. Unsigned weights
#: (exact everywhere) were as accurate but no faster than fp32 on a VNNI CPU, which has no
#: fast unsigned-by-unsigned product. Measured by ``python -m bench.speed.int8``
#: (docs/speed-and-scale.md).
QUANT_SETTINGS = {
    "weight_type": "QInt8", "per_channel": True, "reduce_range": True, "smooth_alpha": 0.8, "ops": ["MatMul"],
    "keep_fp32": r"layer\.\d+/output/dense/",
}


def quant_settings(config: dict) -> dict:
    """Return the quantization settings for a model's ``config.json``: 8-bit weights whose pairs cannot saturate
    for MPNet, 7 for BERTs (a BERT's settings, and so its cached exports, are unchanged)."""
    if config.get("model_type") == "mpnet":
        return {**QUANT_SETTINGS, "reduce_range": False, "bound_pairs": {"limit": PAIR_LIMIT, "scales": STEPS}}
    return QUANT_SETTINGS


_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def export_onnx(model_dir: Path, cache_dir: Path, encoder: str = "int8") -> Path:
    """Return the cached ONNX export of ``model_dir`` for ``encoder`` (``int8`` or ``fp32``)."""
    if encoder not in ENCODERS:
        raise ValueError(f"encoder must be one of {ENCODERS}, not {encoder!r}")
    model_dir = Path(model_dir)
    cache_dir = Path(cache_dir)
    ort = import_onnxruntime()
    config = (model_dir / "config.json").read_bytes()
    key = _cache_key(model_dir, cache_dir, encoder, ort.__version__, config)
    final = cache_dir / f"{encoder}-{key[:24]}.onnx"
    if final.is_file() and (encoder != "int8" or check_path(final).is_file()):
        return final
    cache_dir.mkdir(parents=True, exist_ok=True)
    _sweep_abandoned(cache_dir)
    shared = shared_exports()
    elsewhere = shared.resolve() != cache_dir.resolve()
    if elsewhere and _copy_shared(shared / final.name, final):
        return final
    _export(model_dir, final, encoder, config)
    if elsewhere:
        _publish(final, shared / final.name)
    return final


def shared_exports() -> Path:
    """Where an export is also kept for the next index to copy (~0.2 s instead of ~11 s to make):
    ``exports/`` of the packaged models' cache (QA_MODEL_CACHE, else $XDG_CACHE_HOME/qa/models)."""
    from qa.embed.packaged import cache_root

    return cache_root() / "exports"


def _parts(onnx_path: Path) -> list[Path]:
    """The files of an export: the ONNX file, and an int8 export's check vectors (its name says int8)."""
    return [onnx_path, check_path(onnx_path)] if onnx_path.name.startswith("int8-") else [onnx_path]


def _digests_path(onnx_path: Path) -> Path:
    return onnx_path.with_suffix(".sha256.json")


def _beside(path: Path) -> Path:
    """A hidden temporary name beside ``path``, this process's own, to write and then rename over it."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


#: The work of an export in progress, named by the process that does it: a private folder
#: (``_export``) or a file being written (``_beside``).
_WORK = re.compile(r"\.tmp-export-(\d+)-.*|\..+\.(\d+)\.tmp")
#: Seconds work must lie untouched, besides its process being gone, before it is removed: a cache
#: shared with another machine or container sees process ids that are not its own.
ABANDONED_AFTER = 3600


def _sweep_abandoned(folder: Path) -> None:
    """Remove the work of exports into ``folder`` whose process is gone: a build killed while it exported
    leaves the model's fp32 and int8 files behind (about 700 MB for all-mpnet-base-v2)."""
    for stray in folder.glob(".*"):
        named = _WORK.fullmatch(stray.name)
        try:
            if not named or _running(int(named.group(1) or named.group(2))) or _touched(stray) > (
                    time.time() - ABANDONED_AFTER):
                continue
            if stray.is_dir():
                shutil.rmtree(stray, ignore_errors=True)
            else:
                stray.unlink(missing_ok=True)
        except OSError as exc:  # gone meanwhile, or not ours to remove: the export goes on
            logger.debug("leaving %s: %s", stray, exc)


def _touched(path: Path) -> float:
    """The last time ``path``, or a file directly in it, was written."""
    return max([path.stat().st_mtime, *(child.stat().st_mtime for child in path.iterdir())] if path.is_dir()
               else [path.stat().st_mtime])


def _running(pid: int) -> bool:
    """Say whether a process ``pid`` runs on this machine (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process; an id too large to be one: kept
        pass
    return True


def _copy_shared(source: Path, final: Path) -> bool:
    """Copy a shared export into place if it is whole: every file there, each matching the digest published
    with it. Anything else (absent, partial, damaged, unreadable) leaves the export to be made afresh."""
    copies: list[tuple[Path, Path]] = []
    try:
        digests = json.loads(_digests_path(source).read_text(encoding="ascii"))
        if not isinstance(digests, dict):
            raise ValueError(f"{_digests_path(source)} does not map files to digests")
        for part, target in zip(_parts(source), _parts(final)):
            tmp = _beside(target)
            copies.append((tmp, target))
            if _copy_hashing(part, tmp) != digests.get(part.name):
                raise ValueError(f"{part} does not match its digest")
    except (OSError, ValueError) as exc:
        logger.debug("not copying the shared export %s: %s", source, exc)
        for tmp, _ in copies:
            tmp.unlink(missing_ok=True)
        return False
    for tmp, target in reversed(copies):  # the ONNX file last: it is what says an export is there
        os.replace(tmp, target)
    return True


def _publish(final: Path, shared: Path) -> None:
    """Keep a copy of a new export where the next index finds it; a cache that cannot be written is passed by."""
    tmp = None
    try:
        shared.parent.mkdir(parents=True, exist_ok=True)
        _sweep_abandoned(shared.parent)
        digests = {}
        for part, target in zip(_parts(final), _parts(shared)):
            tmp = _beside(target)
            digests[target.name] = _copy_hashing(part, tmp)
            os.replace(tmp, target)
        tmp = _beside(_digests_path(shared))
        tmp.write_text(json.dumps(digests), encoding="ascii")
        os.replace(tmp, _digests_path(shared))  # last: a copy is taken only once this says what it holds
    except OSError as exc:
        logger.debug("the export is not shared in %s: %s", shared.parent, exc)
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def _copy_hashing(source: Path, target: Path) -> str:
    """Copy ``source`` to ``target`` and return the SHA-256 of what was copied."""
    digest = hashlib.sha256()
    with open(source, "rb") as reader, open(target, "wb") as writer:
        for block in iter(lambda: reader.read(1 << 20), b""):
            digest.update(block)
            writer.write(block)
    return digest.hexdigest()


def _export(model_dir: Path, final: Path, encoder: str, config: bytes) -> None:
    """Make the export ``final`` (and an int8 export's check vectors) in a private folder beside it."""
    work = Path(tempfile.mkdtemp(prefix=f".tmp-export-{os.getpid()}-", dir=final.parent))
    try:
        fp32 = work / "fp32.onnx"
        _export_fp32(model_dir, fp32, export_settings(json.loads(config)))
        if encoder == "int8":
            settings = quant_settings(json.loads(config))
            tokenizer = load_tokenizer(model_dir)
            smoothed, built = work / "smoothed.onnx", work / "int8.onnx"
            smooth(fp32, smoothed, lambda session, texts: run_texts(session, tokenizer, texts),
                   calibration.CALIBRATION, settings["smooth_alpha"])
            _quantize(smoothed, built, settings)
            np.save(work / "check.npy", mean_pooled(_session(fp32), tokenizer, calibration.CHECK))
            os.replace(work / "check.npy", check_path(final))
        else:
            built = fp32
        os.replace(built, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)



def check_path(onnx_path: Path) -> Path:
    """Where the fp32 vectors of ``calibration.CHECK`` lie beside an int8 export."""
    return onnx_path.with_suffix(".check.npy")


def load_tokenizer(model_dir: Path, max_tokens: int | None = None):
    """Return the model's fast tokenizer as sentence-transformers uses it: truncated at its window, unpadded."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    # tokenizer.json ships with truncation at 128 and fixed padding to 128;
    # sentence-transformers reads up to max_seq_length and pads per batch.
    tokenizer.enable_truncation(max_tokens or model_settings(model_dir)["max_seq_length"])
    tokenizer.no_padding()
    return tokenizer


def run_texts(session, tokenizer, texts):
    """Yield a session's outputs for each text alone (stripped, as every encoder strips it)."""
    inputs = {i.name for i in session.get_inputs()}
    for text in texts:
        ids = np.array([tokenizer.encode(str(text).strip()).ids], np.int64)
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        if "token_type_ids" in inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        yield session.run(None, feeds)


def mean_pooled(session, tokenizer, texts) -> np.ndarray:
    """Return the unit-length mean of each text's token embeddings: the sentence-transformers vector."""
    rows = [outputs[0][0].mean(axis=0) for outputs in run_texts(session, tokenizer, texts)]
    matrix = np.array(rows, np.float32).reshape(len(rows), -1)
    return matrix / np.clip(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12, None)


def _session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as exc:
        raise ModelUnavailable(f"the ONNX embedder needs onnxruntime: {INSTALL_HINT}") from exc
    return onnxruntime


def model_settings(model_dir: Path) -> dict:
    """Read what encoding needs from a sentence-transformers folder; refuse what it cannot mimic."""
    if not (model_dir / "tokenizer.json").is_file() or not (model_dir / "config.json").is_file():
        raise ModelUnavailable(f"no tokenizer.json and config.json in {model_dir}")
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    max_seq_length = 256
    sbert = model_dir / "sentence_bert_config.json"
    if sbert.is_file():
        max_seq_length = int(json.loads(sbert.read_text(encoding="utf-8")).get("max_seq_length") or 256)
    modules = model_dir / "modules.json"
    if modules.is_file():
        entries = json.loads(modules.read_text(encoding="utf-8"))
        if entries and entries[0].get("path", "") != "":
            raise ModelUnavailable(f"the transformer of {model_dir} is not at the folder's root")
        for entry in entries:
            if entry.get("type", "").endswith("Pooling"):
                pooling = json.loads((model_dir / entry["path"] / "config.json").read_text(encoding="utf-8"))
                if not pooling.get("pooling_mode_mean_tokens") or any(
                    v for k, v in pooling.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens"
                ):
                    raise ModelUnavailable(f"the ONNX embedder supports mean pooling only, not {pooling}")
            elif not entry.get("type", "").endswith(("Transformer", "Pooling", "Normalize")):
                raise ModelUnavailable(f"the ONNX embedder cannot run the module {entry.get('type')}")
    return {
        "max_seq_length": min(max_seq_length, int(config.get("max_position_embeddings", max_seq_length))),
        "dimension": int(config["hidden_size"]),
    }


def _weights_file(model_dir: Path) -> Path:
    for candidate in _WEIGHT_FILES:
        if (model_dir / candidate).is_file():
            return model_dir / candidate
    raise ModelUnavailable(f"no weights ({' or '.join(_WEIGHT_FILES)}) in {model_dir}")


def _cache_key(model_dir: Path, cache_dir: Path, encoder: str, ort_version: str, config: bytes) -> str:
    """Hash of the weights, ``config`` (the bytes of config.json), tool versions and settings that
    determine the export."""
    weights = _weights_file(model_dir)
    settings = json.loads(config)
    parts = {
        "weights": _file_digest(weights, cache_dir),
        "config": hashlib.sha256(config).hexdigest(),
        "onnxruntime": ort_version,
        "onnx": _dist_version("onnx"),
        "torch": _dist_version("torch"),
        "export": export_settings(settings),
        "precision": encoder,  # the cache key's own name for it, kept so exports made before are found
        "quant": quant_settings(settings) if encoder == "int8" else None,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "absent"


def _file_digest(path: Path, cache_dir: Path) -> str:
    """SHA-256 of ``path``, remembered in ``cache_dir`` by path, size and mtime (hashing 90 MB takes ~0.3 s)."""
    stat = path.stat()
    stamp = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    memo = cache_dir / "digests" / (hashlib.sha256(stamp.encode()).hexdigest()[:32] + ".sha256")
    try:
        cached = memo.read_text(encoding="ascii").strip()
        if len(cached) == 64:
            return cached
    except OSError:
        pass
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    value = digest.hexdigest()
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp = _beside(memo)
        tmp.write_text(value + "\n", encoding="ascii")
        os.replace(tmp, memo)
    except OSError:
        pass  # a read-only cache only costs the hash next time
    return value


def _export_fp32(model_dir: Path, target: Path, settings: dict) -> None:
    """Export the transformer with torch's TorchScript-based ONNX exporter and check it against torch."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import onnx  # noqa: F401  (the quantizer needs it; fail before the slow part)
        import torch
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise ModelUnavailable(f"exporting the ONNX model needs torch, transformers and onnx: {INSTALL_HINT}") from exc
    hf_logging.disable_progress_bar()
    try:
        model = AutoModel.from_pretrained(
            str(model_dir), local_files_only=True, attn_implementation=EXPORT_SETTINGS["attn_implementation"]
        ).eval()
    except Exception as exc:
        raise ModelUnavailable(f"cannot load the transformer at {model_dir}: {exc}") from exc

    inputs = settings["inputs"]

    class _LastHidden(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *tensors):
            return self.inner(**dict(zip(inputs, tensors)), return_dict=False)[0]

    wrapped = _LastHidden(model).eval()
    # A padded batch, so the traced graph keeps the attention-mask path.
    generator = torch.Generator().manual_seed(0)
    vocab = int(model.config.vocab_size)

    def feeds(ids, mask):
        return (ids, mask, torch.zeros_like(ids))[: len(inputs)]

    ids = torch.randint(1000, vocab, (3, 24), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 15:] = 0
    mask[2, 6:] = 0
    with torch.no_grad():
        expected = wrapped(*feeds(ids, mask)).numpy()
    names = inputs + [settings["output"]]
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TracerWarnings and the exporter's deprecation notice
        torch.onnx.export(
            wrapped,
            feeds(ids, mask),
            str(target),
            dynamo=False,
            opset_version=settings["opset"],
            input_names=inputs,
            output_names=[settings["output"]],
            dynamic_axes={n: {0: "batch", 1: "sequence"} for n in names},
            do_constant_folding=True,
        )
    # Check the export on another shape than the one traced.
    import onnxruntime as ort

    ids2 = torch.randint(1000, vocab, (2, 37), generator=generator)
    mask2 = torch.ones_like(ids2)
    mask2[1, 11:] = 0
    with torch.no_grad():
        expected2 = wrapped(*feeds(ids2, mask2)).numpy()
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    for x, m, want in ((ids, mask, expected), (ids2, mask2, expected2)):
        got = session.run(None, {n: t.numpy() for n, t in zip(inputs, feeds(x, m))})[0]
        error = float(np.abs((got - want) * m.numpy()[:, :, None]).max())
        if not error < 1e-3:
            raise ModelUnavailable(f"the ONNX export of {model_dir} differs from torch (max error {error:.3g})")


def _quantize(source: Path, target: Path, settings: dict) -> None:
    try:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise ModelUnavailable(f"quantizing needs onnx: {INSTALL_HINT}") from exc
    keep = settings.get("keep_fp32")
    excluded = []
    if keep:
        excluded = [n.name for n in onnx.load(str(source), load_external_data=False).graph.node if re.search(keep, n.name)]
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # "consider pre-processing": it fails on this graph and gains nothing
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(
                str(source),
                str(target),
                per_channel=settings["per_channel"],
                reduce_range=settings["reduce_range"],
                weight_type=getattr(QuantType, settings["weight_type"]),
                nodes_to_exclude=excluded,
                op_types_to_quantize=settings.get("ops"),
            )
    finally:
        logging.disable(previous)
    if settings.get("bound_pairs"):
        try:
            bound_pairs(source, target, settings["bound_pairs"]["scales"])
        except ValueError as exc:  # an onnxruntime whose quantizer lays weights out otherwise: no export, not a wrong one
            raise ModelUnavailable(f"the int8 weights cannot be bounded for AVX2 CPUs ({exc}); build with "
                                   "--encoder fp32 and ask with --query-encoder fp32") from exc
