"""``brainexpr fetch ahba`` logic with a fake server: resume, verification, extraction.

No test touches the network: the opener is replaced by an in-memory fake.
"""

import io as stdio
import zipfile

import pandas as pd
import pytest

from brainexpr.ahba import download


class FakeResponse:
    def __init__(self, payload: bytes, status=200, headers=None, fail_after=None):
        self._data = stdio.BytesIO(payload)
        self.status = status
        self.headers = headers or {}
        self._fail_after = fail_after
        self._sent = 0

    def read(self, n=-1):
        if self._fail_after is not None and self._sent >= self._fail_after:
            raise ConnectionError("connection reset by fake server")
        block = self._data.read(n if self._fail_after is None else min(n, self._fail_after))
        self._sent += len(block)
        return block

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class FakeServer:
    """Serves one payload; honours Range unless ``ignore_range``; can drop the first transfer."""

    def __init__(self, payload: bytes, drop_first_after=None, ignore_range=False):
        self.payload = payload
        self.drop_first_after = drop_first_after
        self.ignore_range = ignore_range
        self.ranges = []

    def __call__(self, request, timeout=None):
        header = request.get_header("Range")
        self.ranges.append(header)
        fail = self.drop_first_after if len(self.ranges) == 1 else None
        if header and not self.ignore_range:
            start = int(header.split("=")[1].rstrip("-"))
            body = self.payload[start:]
            return FakeResponse(body, status=206, fail_after=fail, headers={
                "Content-Range": f"bytes {start}-{len(self.payload) - 1}/{len(self.payload)}",
                "Content-Length": str(len(body))})
        return FakeResponse(self.payload, fail_after=fail,
                            headers={"Content-Length": str(len(self.payload))})


@pytest.fixture
def archive_bytes(data_dir):
    """A donor-12876 archive with the real sample layout and three probes."""
    from brainexpr.ahba.synthetic import build_ontology, raw_sample_table

    annot = raw_sample_table(12876, data_dir)
    buffer = stdio.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("SampleAnnot.csv", annot.to_csv(index=False))
        archive.writestr("Ontology.csv", build_ontology(data_dir).to_csv(index=False))
        archive.writestr("Probes.csv", pd.DataFrame({
            "probe_id": [1, 2, 3], "probe_name": ["a", "b", "c"], "gene_id": 1,
            "gene_symbol": "G", "gene_name": "g", "entrez_id": 1, "chromosome": "1",
        }).to_csv(index=False))
        row = ",".join(["7.5"] * len(annot))
        archive.writestr("MicroarrayExpression.csv", "".join(f"{i},{row}\n" for i in (1, 2, 3)))
        archive.writestr("PACall.csv", "".join(f"{i},{row.replace('7.5', '1')}\n" for i in (1, 2, 3)))
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    monkeypatch.setattr(download, "N_PROBES", 3)
    monkeypatch.setattr("time.sleep", lambda s: None)


def test_interrupted_download_resumes_with_a_range_request(tmp_path):
    payload = bytes(range(256)) * 400
    server = FakeServer(payload, drop_first_after=10_000)
    path = download.download_file("https://example.invalid/x", tmp_path / "x.zip", opener=server,
                                  chunk_size=4096)
    assert path.read_bytes() == payload
    assert server.ranges == [None, "bytes=12288-"]   # 3 chunks of 4096 arrived before the drop
    assert not (tmp_path / "x.zip.part").exists()


def test_server_ignoring_range_restarts_cleanly(tmp_path):
    payload = b"abcdefgh" * 1000
    (tmp_path / "x.zip.part").write_bytes(payload[:100])
    server = FakeServer(payload, ignore_range=True)
    path = download.download_file("https://example.invalid/x", tmp_path / "x.zip", opener=server)
    assert path.read_bytes() == payload and server.ranges == ["bytes=100-"]


def test_fetch_verifies_extracts_and_skips_present_donors(tmp_path, archive_bytes):
    server = FakeServer(archive_bytes)
    folders = download.fetch_ahba(data_dir=tmp_path, donors=[12876], opener=server)
    folder = folders[12876]
    assert folder == tmp_path / "microarray" / "normalized_microarray_donor12876"
    assert sorted(p.name for p in folder.iterdir()) == sorted(download.RAW_FILES.values())
    assert not list((tmp_path / "microarray").glob("*.zip"))

    def offline(*args, **kwargs):
        raise AssertionError("present donors must not be downloaded again")

    assert download.fetch_ahba(data_dir=tmp_path, donors=[12876], opener=offline)[12876] == folder


def test_corrupted_archive_is_rejected_and_removed(tmp_path, archive_bytes):
    damaged = bytearray(archive_bytes)
    start = damaged.index(b"7.5,7.5")
    damaged[start:start + 3] = b"9.9"
    with pytest.raises(download.DownloadError, match="fails its CRC-32 check"):
        download.fetch_ahba(data_dir=tmp_path, donors=[12876], opener=FakeServer(bytes(damaged)))
    assert not list((tmp_path / "microarray").iterdir())


def test_wrong_donor_archive_is_rejected(tmp_path, archive_bytes):
    with pytest.raises(download.DownloadError, match="lists 363 samples, donor 9861 has 946"):
        download.fetch_ahba(data_dir=tmp_path, donors=[9861], opener=FakeServer(archive_bytes))
