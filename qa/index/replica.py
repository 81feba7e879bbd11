"""Copy a build from one index folder to another and put it in service: how replicas follow a builder.

A build is an immutable folder, so a replica needs no engine: copy the folder,
check every byte arrived, and switch ``CURRENT`` to it atomically, as a local
build does. A ``qa serve`` on the replica picks the new build up by itself.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from qa.embed import vector_space
from qa.errors import IndexUnavailable, QAError
from qa.index import layout
from qa.index.reader import IndexReader

_CHUNK = 1 << 20


def publish_copy(source_index: Path, index_dir: Path, build: str | None = None, wait: bool = True) -> tuple[Path, bool]:
    """Copy ``source_index``'s current build (or ``build``) into ``index_dir`` and make it current there.

    Returns:
        The build's folder in ``index_dir``, and whether anything changed (False:
        it was already the build in service).

    Raises:
        IndexUnavailable: the source build is missing, damaged, or made by another
            model than the one the replica serves; or the copy arrived damaged.
        IndexBusy: a build of ``index_dir`` is running and ``wait`` is false.
    """
    source = layout.current_build(source_index) if build is None else source_index / layout.BUILDS / build
    if source is None or not source.is_dir():
        raise IndexUnavailable(f"no build to copy in {source_index}" + (f" named {build!r}" if build else ""))
    IndexReader(source).close()  # refuses a damaged build, naming the file
    expected = {name: _digest(source / name) for name in layout.BUILD_FILES}
    model = layout.Manifest.read(source / layout.MANIFEST).model
    with layout.build_lock(index_dir, wait=wait):
        served = _served(index_dir)
        if served is not None and served.name == source.name and _matches(served, expected):
            return served, False
        if served is not None:
            serving = layout.Manifest.read(served / layout.MANIFEST).model
            if vector_space(serving) != vector_space(model):
                raise IndexUnavailable(
                    f"{index_dir} serves a build of model {serving!r}; {source} was made with {model!r}"
                )
        existing = index_dir / layout.BUILDS / source.name
        if existing.is_dir():
            if not _matches(existing, expected):
                raise IndexUnavailable(f"{existing} holds another build of the same name; remove it or rebuild")
            layout.publish(index_dir, source.name)  # the build it had before: in service again
            return existing, True
        with layout.staged_build(index_dir, source.name) as folder:
            for name in layout.BUILD_FILES:
                shutil.copyfile(source / name, folder / name)
            if not _matches(folder, expected):
                raise IndexUnavailable(f"the copy of {source} into {index_dir} arrived damaged; run the command again")
            IndexReader(folder).close()
    return index_dir / layout.BUILDS / source.name, True


def _served(index_dir: Path) -> Path | None:
    try:
        return layout.current_build(index_dir)
    except QAError:
        return None  # a damaged CURRENT is replaced by the copy


def _matches(folder: Path, expected: dict[str, str]) -> bool:
    return all((folder / name).is_file() and _digest(folder / name) == digest for name, digest in expected.items())


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()
