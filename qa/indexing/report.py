"""What a build did, for the CLI to print and the library to return."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from qa import index
from qa.records import Skipped


@dataclass
class BuildReport:
    """What a build did, for the CLI to print."""

    documents: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    passages: int = 0
    encoded: int = 0
    reused: int = 0
    seconds: float = 0.0
    #: Seconds spent embedding passages and sentences (what the passages/s of ``summary`` divides by).
    embed_seconds: float = 0.0
    up_to_date: bool = False
    folder: Path | None = None
    #: (source, note) of what readers noticed in newly read files: pages without text, an encoding.
    notes: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        """The one line ``qa index`` and ``qa serve`` print when a build ends."""
        if self.up_to_date:
            return f"index up to date: {self.documents} documents, {self.passages} passages ({self.seconds:.1f}s)"
        per_second = self.encoded / self.embed_seconds if self.encoded and self.embed_seconds else 0.0
        rate = f" ({per_second:,.0f} passages/s)" if per_second >= 10 else f" ({per_second:.2g} passages/s)" \
            if per_second else ""
        return (f"indexed {self.documents} documents ({len(self.skipped)} skipped) into {self.passages} passages: "
                f"{self.encoded} embedded, {self.reused} reused, in {self.seconds:.1f}s{rate} -> {self.folder}")

    @classmethod
    def unchanged(cls, previous) -> BuildReport:
        """Report a build that found nothing to do: ``previous`` (an ``IndexView``) stays in service."""
        report = cls(documents=previous.manifest.document_count, skipped=previous.tables.skipped(),
                     up_to_date=True, folder=previous.folder)
        report.passages = report.reused = previous.manifest.passage_count
        return report


def in_service_summary(index_dir: Path) -> str:
    """Say what a stopped build left in service: the build before it, or nothing."""
    manifest, shards = index.in_service(index_dir)
    if manifest is None:
        return f"{index_dir} holds no index yet"
    parts = f" in {shards} shards" if shards > 1 else ""
    return (f"the index in service is unchanged: {manifest.document_count} documents, {manifest.passage_count} "
            f"passages{parts}, built {manifest.built_at}")
