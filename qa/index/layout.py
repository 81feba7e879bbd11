"""The index folder on disk: one folder per build, a pointer to the build in service, one writer.

Layout of an index folder::

    index/
      CURRENT                  name of the build in service, replaced atomically
      build.lock               held by the one process that is building
      models/                  cached query-encoder exports, kept across builds
      tuned.json               search settings chosen by `qa tune` for this collection, kept across builds
      resume/<key>/            vectors embedded by a build not yet published (qa/indexing/resume.py)
      builds/<name>/
        manifest.json          format version, model, dimension, counts, fingerprint, chunking
        vectors.faiss          passage vectors; row i is passage row i (qa/index/vectors.py)
        sentences.npy          one float16 vector per sentence row, memory-mapped when read
        passages.sqlite        documents, passages, sentences, FTS5 index (qa/index/tables.py)

A build is written into a fresh folder and published by replacing ``CURRENT``
in one ``os.replace``, so readers see the old build or the new one, never half
of one, and a killed build leaves only an unreferenced folder behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from qa.embed import encoder_spec, split_spec
from qa.errors import IndexBusy, IndexUnavailable, IndexWriteError
from qa.settings import ENCODERS, ChunkSettings

# 3: text layers, formats and PDF pages in the passage table.
FORMAT_VERSION = 3
MANIFEST = "manifest.json"
VECTORS = "vectors.faiss"
PASSAGES = "passages.sqlite"
SENTENCES = "sentences.npy"
CURRENT = "CURRENT"
LOCK = "build.lock"
#: How long a build that will not wait tries again for the lock: lock_holder's probe holds it for microseconds.
PROBE_GRACE = 0.5
BUILDS = "builds"
#: Cached query-encoder exports, kept across builds.
MODELS = "models"
#: Search settings `qa tune` chose for the collection: beside the builds, so every new build keeps them.
TUNED = "tuned.json"
TUNED_FORMAT = 1
#: Every file a complete build holds.
BUILD_FILES = (MANIFEST, VECTORS, PASSAGES, SENTENCES)
#: Builds kept besides the current one: the one it replaced, for readers that opened it before the switch.
KEEP_PREVIOUS = 1
# What a build is named: its UTC start time.
_BUILD_NAME = re.compile(r"[0-9]{8}T[0-9]{12}Z")
_BUILD_NAME_FORMAT = "%Y%m%dT%H%M%S%fZ"
_MANIFEST_TYPES = {
    "model": str,
    "encoder": str,
    "dimension": int,
    "passage_count": int,
    "document_count": int,
    "fingerprint": str,
    "chunking": dict,
    "built_at": str,
    "build_seconds": (int, float),
    "format_version": int,
}
_MANIFEST_REQUIRED = ("model", "dimension", "passage_count", "document_count", "fingerprint")


@dataclass(frozen=True)
class Manifest:
    """What a build contains and how it was made; written as ``manifest.json``."""

    #: Its file in a build folder.
    FILE = MANIFEST

    #: The weights, as ``--model`` names them (``all-MiniLM-L6-v2``, a folder, ``hashing:256``).
    model: str
    dimension: int
    passage_count: int
    document_count: int
    fingerprint: str
    #: How passages were encoded: ``int8`` (the model's int8 export) or ``fp32`` (the model itself).
    encoder: str = "fp32"
    #: The chunking settings, as ``ChunkSettings.as_manifest`` records them.
    chunking: dict = field(default_factory=dict)
    built_at: str = ""
    #: Seconds the build took, from reading the folder to publishing.
    build_seconds: float = 0.0
    format_version: int = FORMAT_VERSION

    @classmethod
    def read(cls, path: Path) -> Manifest:
        """Load and type-check a manifest; anything amiss is IndexUnavailable naming the file."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            if isinstance(exc, OSError) and _out_of_descriptors(exc):
                raise unreadable(path, exc) from None
            raise IndexUnavailable(f"unreadable index manifest {path}: {exc}; run `qa index --rebuild`") from None
        return cls.checked(data, path)

    @classmethod
    def checked(cls, data, path: Path) -> Manifest:
        """Type-check a manifest's recorded fields (read from ``path``); anything amiss is IndexUnavailable."""
        if not isinstance(data, dict):
            raise IndexUnavailable(f"index manifest {path} is not a JSON object; run `qa index --rebuild`")
        for name, kind in _MANIFEST_TYPES.items():
            if name in data and (not isinstance(data[name], kind) or isinstance(data[name], bool)):
                expected = "a number" if isinstance(kind, tuple) else kind.__name__
                raise IndexUnavailable(
                    f"index manifest {path}: {name} must be {expected}, not {data[name]!r:.40}; "
                    "run `qa index --rebuild`"
                )
        if data.get("encoder", ENCODERS[0]) not in ENCODERS:
            raise IndexUnavailable(f"index manifest {path}: encoder must be one of {', '.join(ENCODERS)}, not "
                                   f"{data['encoder']!r:.40}; run `qa index --rebuild`")
        missing = [name for name in _MANIFEST_REQUIRED if name not in data]
        if missing:
            raise IndexUnavailable(f"index manifest {path} lacks {', '.join(missing)}; run `qa index --rebuild`")
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict) -> Manifest:
        """Make a manifest of its recorded fields; one written before ``encoder`` had the model's spec in ``model``."""
        data = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        if "encoder" not in data:
            data["model"], data["encoder"] = split_spec(data["model"])
        return cls(**data)

    @property
    def spec(self) -> str:
        """The model and encoder in one name, as an embedder reports it (``all-MiniLM-L6-v2+onnx-int8``)."""
        return encoder_spec(self.model, self.encoder) if self.encoder == "int8" else self.model

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")

    def chunk_settings(self, where: Path) -> ChunkSettings:
        """Return the chunking this build was made with (IndexUnavailable if another chunker made it)."""
        return ChunkSettings.from_manifest(self.chunking, str(where))


def unreadable(path: Path, exc: BaseException, what: str = "cannot read") -> IndexUnavailable:
    """Return the error for an index file that could not be opened or read.

    A process out of file descriptors fails to open a sound file just as it
    fails on a damaged one; telling it to rebuild would send the operator the
    wrong way (a worker of an index in 256 shards holds two per shard).
    """
    if _out_of_descriptors(exc):
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        return IndexUnavailable(
            f"cannot open {path}: this process has too many open files (limit {soft}); raise the limit "
            "(ulimit -n, or LimitNOFILE= in its systemd unit) or serve fewer shards"
        )
    return IndexUnavailable(f"{what} {path}: {' '.join(str(exc).split())[:300]}; run `qa index --rebuild`")


def _out_of_descriptors(exc: BaseException) -> bool:
    import errno

    if isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE):
        return True
    if "too many open files" in str(exc).lower():
        return True  # FAISS's own message
    # SQLite says only "unable to open database file": look at what this process holds.
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        return len(os.listdir("/proc/self/fd")) >= soft - 4
    except OSError as listing:
        # Listing the descriptors takes one: at the limit the listing itself fails.
        return listing.errno in (errno.EMFILE, errno.ENFILE)
    except ValueError:
        return False


def is_build_name(name: str) -> bool:
    """Say whether ``name`` is what builds are named (and so names nothing outside ``builds/``)."""
    return bool(_BUILD_NAME.fullmatch(name))


def current_build(index_dir: Path) -> Path | None:
    """Return the folder of the build in service, or None when there is none.

    Raises:
        IndexUnavailable: ``CURRENT`` cannot be read or does not name a build.
    """
    path = index_dir / CURRENT
    try:
        name = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        if isinstance(exc, OSError) and _out_of_descriptors(exc):
            raise unreadable(path, exc) from None
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise IndexUnavailable(f"cannot read {path}: {reason}; run `qa index --rebuild`") from None
    if not name:
        return None
    if not _BUILD_NAME.fullmatch(name):
        # A name like "../../elsewhere" would make qa serve files outside the index.
        raise IndexUnavailable(f"{path} does not name a build ({name[:40]!r}); run `qa index --rebuild`")
    return index_dir / BUILDS / name


@contextlib.contextmanager
def build_lock(index_dir: Path, wait: bool = False) -> Iterator[None]:
    """Hold the index's single-writer lock, removing leftovers of killed builds once it is held.

    Raises:
        IndexBusy: another process holds it and ``wait`` is false.
    """
    with writing(index_dir):
        created = not index_dir.exists()
        index_dir.mkdir(parents=True, exist_ok=True)
        handle = open(index_dir / LOCK, "a+")
    with handle:
        try:
            _lock_exclusive(handle, wait)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise IndexBusy(
                f"another build of {index_dir} is running ({holder}); wait for it or use --wait"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            _remove_leftovers(index_dir)
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            if created and [p.name for p in index_dir.iterdir()] == [LOCK]:
                # A first build that wrote nothing (no documents, say) leaves no folder behind.
                (index_dir / LOCK).unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    index_dir.rmdir()
            fcntl.flock(handle, fcntl.LOCK_UN)


def _lock_exclusive(handle, wait: bool) -> None:
    """Take the build lock; not waiting, still outlast ``lock_holder``'s probe (raises BlockingIOError).

    The probe holds a shared lock for microseconds, so a build that met it
    tries again for ``PROBE_GRACE`` seconds before it says another build runs:
    a server asking who builds must not make a ``qa index`` fail.
    """
    if wait:
        fcntl.flock(handle, fcntl.LOCK_EX)
        return
    deadline = time.monotonic() + PROBE_GRACE
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def lock_holder(index_dir: Path) -> str | None:
    """Say who holds the build lock of ``index_dir`` ("pid 4242"), or None when no build runs."""
    try:
        handle = open(index_dir / LOCK, "r")
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return handle.read().strip() or "another process"
        fcntl.flock(handle, fcntl.LOCK_UN)
        return None


def _remove_leftovers(index_dir: Path) -> None:
    """Remove half-written builds of killed processes (only the lock holder writes any)."""
    builds = index_dir / BUILDS
    if builds.is_dir():
        for stray in builds.glob(".tmp-*"):
            shutil.rmtree(stray, ignore_errors=True)
    for stray in index_dir.glob(f".{CURRENT}.*"):
        stray.unlink(missing_ok=True)


@contextlib.contextmanager
def staged_build(index_dir: Path, name: str | None = None) -> Iterator[Path]:
    """Yield a fresh folder to write a build into; publish it as current when the block ends.

    ``name`` is the build's name (default: now, in UTC); a copy of another index's
    build keeps its name. Call with the build lock held. On any error the folder
    is removed and the build in service stays; a failed write is IndexWriteError
    naming what failed.
    """
    builds = index_dir / BUILDS
    name = name or datetime.now(timezone.utc).strftime(_BUILD_NAME_FORMAT)
    if not _BUILD_NAME.fullmatch(name):
        raise ValueError(f"not a build name: {name!r}")
    tmp = builds / f".tmp-{name}-{os.getpid()}"
    try:
        with writing(index_dir):
            builds.mkdir(parents=True, exist_ok=True)
            tmp.mkdir()
            yield tmp
            for child in tmp.iterdir():
                _fsync(child)
            final = builds / name
            os.rename(tmp, final)
            _fsync(builds)
            publish(index_dir, name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def publish(index_dir: Path, name: str) -> None:
    """Make the complete build ``name`` the one in service, keeping the one it replaces for its readers."""
    try:
        served = current_build(index_dir)
    except IndexUnavailable:
        served = None  # a damaged CURRENT is what this build repairs
    _publish(index_dir, name)
    _prune(index_dir, keep={name, served.name if served else ""})


@contextlib.contextmanager
def writing(index_dir: Path) -> Iterator[None]:
    """Turn a failed write (disk full, read-only folder) into IndexWriteError naming what failed."""
    try:
        yield
    except (OSError, sqlite3.Error) as exc:
        where = f"{exc.filename}: " if isinstance(exc, OSError) and exc.filename else ""
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise IndexWriteError(
            f"cannot write the index in {index_dir} ({where}{reason}); free some space or make the "
            "folder writable, then run `qa index` again. The build in service is unchanged"
        ) from exc


def _publish(index_dir: Path, name: str) -> None:
    tmp = index_dir / f".{CURRENT}.{os.getpid()}"
    tmp.write_text(name + "\n", encoding="utf-8")
    _fsync(tmp)
    os.replace(tmp, index_dir / CURRENT)
    _fsync(index_dir)


def _prune(index_dir: Path, keep: set[str]) -> None:
    """Remove every build but ``keep`` (the new one and the one it replaced), and leftovers of killed builds.

    A build killed after its folder was renamed but before it was published is
    never served, so it goes too; the build that was in service until now
    stays, for readers that opened it just before the switch.
    """
    for path in (index_dir / BUILDS).iterdir():
        if path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)
    for stray in index_dir.glob(f".{CURRENT}.*"):
        stray.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_tuning(index_dir: Path) -> dict | None:
    """Return what ``qa tune --save`` recorded for this index (settings, questions, gain), or None.

    Raises:
        IndexUnavailable: the file exists but cannot be read as a tuning record.
    """
    path = index_dir / TUNED
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise IndexUnavailable(f"unreadable tuning {path}: {exc}; run `qa tune --reset`") from None
    if not isinstance(data, dict) or data.get("format") != TUNED_FORMAT or not isinstance(data.get("settings"), dict):
        raise IndexUnavailable(f"{path} is not a tuning record this qa reads; run `qa tune --reset`")
    return data


def write_tuning(index_dir: Path, record: dict | None) -> None:
    """Record ``record`` (``settings`` and how they were chosen) as the index's tuning, atomically; None removes it."""
    path = index_dir / TUNED
    with writing(index_dir):
        if record is None:
            path.unlink(missing_ok=True)
            return
        tmp = index_dir / f".{TUNED}.{os.getpid()}"
        tmp.write_text(json.dumps({"format": TUNED_FORMAT, **record}, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)


def raise_open_files_limit() -> None:
    """Raise this process's soft limit on open files to its hard limit.

    An index in shards holds two descriptors per shard in every worker, and one
    more per search in flight; the usual soft limit of 1,024 runs out at a few
    hundred shards while the hard limit is far above. (Python servers and
    databases do the same at start-up.)
    """
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError):
            pass  # a container may refuse; the limit stays as it was
