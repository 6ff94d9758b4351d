"""Downloading reference datasets, against a local HTTP server on 127.0.0.1 only.

The server (standard library ``http.server`` in a thread) serves fixture files made in
code and honours ``Range``; per path it can fail the first requests with 503, drop the
first transfer half-way, or answer with an HTML page. A small registry replaces the
real one, so nothing here depends on the reference data except the tests that check
the real registry and the conversions.
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import json
import re
import socket
import threading
import urllib.parse
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from brainexpr.cli import main
from brainexpr.datasets import (dataset_status, derive, download, fetch, load_gene_set,
                                load_regional_expression, registry)
from brainexpr.errors import DataNotFoundError
from brainexpr.workflows.data import ensure_datasets, fetch_datasets
from brainexpr.workflows.run import RUN_DATASETS, prepare_data

_REAL_CONNECT = socket.socket.connect

TEXT = b"gene\tvalue\n" + b"".join(b"G%04d\t%d\n" % (i, i * 7) for i in range(4000))  # 45 kB
MEMBER = b"region,value\nA,1\nB,2\n"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _wheel() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("toy/data/table.csv", MEMBER)
        archive.writestr("toy/__init__.py", "")
    return buffer.getvalue()


WHEEL = _wheel()


class Server(ThreadingHTTPServer):
    """Serves ``routes`` (path -> bytes); ``behaviour`` (path -> dict) adds failures."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.routes: dict[str, bytes] = {}
        self.behaviour: dict[str, dict] = {}
        self.log: list[tuple[str, str | None]] = []

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass

    def do_GET(self):  # noqa: N802 (http.server API)
        server: Server = self.server
        server.log.append((self.path, self.headers.get("Range")))
        how = server.behaviour.get(self.path, {})
        if how.get("fail_first", 0) > 0:
            how["fail_first"] -= 1
            self.send_error(503, "busy")
            return
        if how.get("html"):
            page = b"<!DOCTYPE html><html><body>Please log in</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
            return
        body = server.routes.get(self.path)
        if body is None:
            self.send_error(404, "not found")
            return
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match:
            start = int(match.group(1))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        drop = how.pop("drop_after", None)
        if drop is not None:  # send part of the body, then cut the connection
            self.wfile.write(body[start:start + drop])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body[start:])


@pytest.fixture
def loopback(monkeypatch):
    """Allow connections to 127.0.0.1 only (conftest blocks every connection)."""

    def connect(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        if not ipaddress.ip_address(host).is_loopback:
            raise RuntimeError(f"tests must not use the network (tried {address})")
        return _REAL_CONNECT(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture
def server(loopback, monkeypatch):
    monkeypatch.setattr(download.time, "sleep", lambda seconds: None)
    monkeypatch.delenv(fetch.MIRROR_ENV, raising=False)
    monkeypatch.delenv(fetch.OFFLINE_ENV, raising=False)
    httpd = Server()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def toy_registry(server, monkeypatch):
    """Replace the registry by two toy datasets whose sources live on the local server."""
    derived = MEMBER.decode().upper().encode()
    content = {
        "archives": {"toy-wheel": {"url": f"{server.base}/pkg/toy-1.0-py3-none-any.whl",
                                   "sha256": _sha(WHEEL), "size": len(WHEEL)}},
        "datasets": [
            {"name": "toy", "description": "toy", "source": "tests", "url": server.base,
             "licence": "CC0-1.0", "citation": "none",
             "files": {"toy/genes.tsv": _sha(TEXT), "toy/table.csv": _sha(MEMBER),
                       "toy/derived/TABLE.csv": _sha(derived)},
             "locations": {
                 "toy/genes.tsv": [{"url": f"{server.base}/repo/genes.tsv", "size": len(TEXT)}],
                 "toy/table.csv": [{"archive": "toy-wheel", "member": "toy/data/table.csv"}],
                 "toy/derived/TABLE.csv": [{"derive": "upper", "inputs": ["toy/table.csv"]}]}},
            {"name": "toy-manual", "description": "toy", "source": "tests", "url": server.base,
             "licence": "none", "citation": "none", "files": {"toy/secret.txt": _sha(b"x")},
             "manual": "ask the owner for secret.txt"},
        ],
    }
    server.routes.update({"/repo/genes.tsv": TEXT, "/pkg/toy-1.0-py3-none-any.whl": WHEEL})
    monkeypatch.setattr(registry, "_load_json", lambda: content)
    registry._load_registry.cache_clear()
    monkeypatch.setitem(derive.DERIVERS, "upper", lambda path: path.read_text().upper())
    yield content
    registry._load_registry.cache_clear()


def _leftovers(folder):
    return sorted(p.name for p in folder.rglob("*") if p.is_file() and
                  (p.name.endswith(".part") or ".part-" in p.name))


def test_good_download_of_every_kind_of_source(toy_registry, server, tmp_path):
    paths = fetch_datasets(["toy"], data_dir=tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in paths) == [
        "toy/derived/TABLE.csv", "toy/genes.tsv", "toy/table.csv"]
    assert (tmp_path / "toy/genes.tsv").read_bytes() == TEXT
    assert (tmp_path / "toy/derived/TABLE.csv").read_text() == MEMBER.decode().upper()
    assert not (tmp_path / fetch.CACHE_FOLDER).exists()  # the wheel is not kept
    assert _leftovers(tmp_path) == []
    requests = len(server.log)
    assert fetch_datasets(["toy"], data_dir=tmp_path) and len(server.log) == requests  # present


def test_plan_counts_each_source_once_before_downloading(toy_registry, server, tmp_path):
    plan = fetch.plan_fetch(["toy", "toy-manual"], data_dir=tmp_path)
    assert plan.missing["toy"] and plan.n_bytes == len(TEXT) + len(WHEEL)
    assert plan.manual == {"toy-manual": "ask the owner for secret.txt"}
    size = f"({(len(TEXT) + len(WHEEL)) / 1e6:.1f} MB)"
    assert f"1 dataset(s) to download {size}" in plan.describe() and server.log == []
    mirrored = fetch.plan_fetch(["toy-manual"], data_dir=tmp_path, base_url=server.base)
    assert f"unless the mirror {server.base} has them: toy-manual" in mirrored.describe()


def test_checksum_mismatch_leaves_nothing(toy_registry, server, tmp_path):
    server.routes["/repo/genes.tsv"] = TEXT.replace(b"G0001", b"G9999")
    with pytest.raises(download.DownloadError, match="checksum mismatch"):
        fetch.fetch_dataset("toy", data_dir=tmp_path)
    assert not (tmp_path / "toy/genes.tsv").exists() and _leftovers(tmp_path) == []
    assert (tmp_path / "toy/table.csv").is_file()  # the other files were still fetched


def test_interrupted_download_resumes_with_a_range_request(toy_registry, server, tmp_path):
    server.behaviour["/repo/genes.tsv"] = {"drop_after": 10_000}
    fetch.fetch_dataset("toy", data_dir=tmp_path)
    assert (tmp_path / "toy/genes.tsv").read_bytes() == TEXT
    ranges = [r for path, r in server.log if path == "/repo/genes.tsv"]
    assert ranges[0] is None and ranges[1] == "bytes=10000-"


def test_partial_file_from_an_earlier_run_is_continued(toy_registry, server, tmp_path):
    part = tmp_path / "toy/genes.tsv.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(TEXT[:5000])
    fetch.fetch_dataset("toy", data_dir=tmp_path)
    assert (tmp_path / "toy/genes.tsv").read_bytes() == TEXT and not part.exists()
    assert ("/repo/genes.tsv", "bytes=5000-") in server.log


def test_server_error_is_retried_with_backoff(toy_registry, server, tmp_path, monkeypatch):
    delays = []
    monkeypatch.setattr(download.time, "sleep", delays.append)
    server.behaviour["/repo/genes.tsv"] = {"fail_first": 2}
    fetch.fetch_dataset("toy", data_dir=tmp_path)
    assert (tmp_path / "toy/genes.tsv").read_bytes() == TEXT
    assert [p for p, _ in server.log].count("/repo/genes.tsv") == 3 and delays == [1.0, 2.0]


def test_missing_file_on_the_server_is_not_retried(toy_registry, server, tmp_path):
    del server.routes["/repo/genes.tsv"]
    with pytest.raises(download.DownloadError, match="HTTP 404"):
        fetch.fetch_dataset("toy", data_dir=tmp_path)
    assert [p for p, _ in server.log].count("/repo/genes.tsv") == 1


def test_html_page_instead_of_the_file_is_rejected(toy_registry, server, tmp_path):
    server.behaviour["/repo/genes.tsv"] = {"html": True}
    with pytest.raises(download.DownloadError, match="HTML page instead of the file"):
        fetch.fetch_dataset("toy", data_dir=tmp_path)
    assert not (tmp_path / "toy/genes.tsv").exists() and _leftovers(tmp_path) == []


def test_mirror_is_tried_first_and_falls_back(toy_registry, server, tmp_path, monkeypatch):
    server.routes["/mirror/toy/genes.tsv"] = TEXT
    server.behaviour["/mirror/toy/table.csv"] = {"html": True}  # a mirror's error page
    monkeypatch.setenv(fetch.MIRROR_ENV, f"{server.base}/mirror/")
    fetch.fetch_dataset("toy", data_dir=tmp_path)
    paths = [p for p, _ in server.log]
    assert "/mirror/toy/genes.tsv" in paths and "/repo/genes.tsv" not in paths
    assert "/pkg/toy-1.0-py3-none-any.whl" in paths  # fallback for the HTML answer
    assert (tmp_path / "toy/table.csv").read_bytes() == MEMBER


def test_local_folder_as_mirror(toy_registry, server, tmp_path):
    mirror = tmp_path / "usb"
    for rel, data in {"toy/genes.tsv": TEXT, "toy/table.csv": MEMBER}.items():
        (mirror / rel).parent.mkdir(parents=True, exist_ok=True)
        (mirror / rel).write_bytes(data)
    fetch.fetch_dataset("toy", data_dir=tmp_path / "data", base_url=str(mirror))
    assert (tmp_path / "data/toy/derived/TABLE.csv").is_file() and server.log == []


def test_manual_step_is_named(toy_registry, server, tmp_path):
    with pytest.raises(download.DownloadError, match="ask the owner for secret.txt"):
        fetch_datasets(["toy-manual"], data_dir=tmp_path)


def test_offline_stops_with_one_line_and_downloads_nothing(toy_registry, server, tmp_path,
                                                          monkeypatch):
    with pytest.raises(DataNotFoundError, match="offline.*toy-manual, toy") as info:
        ensure_datasets(["toy-manual", "toy"], data_dir=tmp_path, offline=True)
    assert "\n" not in str(info.value)
    monkeypatch.setenv(fetch.OFFLINE_ENV, "1")
    with pytest.raises(DataNotFoundError, match="offline"):
        ensure_datasets(["toy"], data_dir=tmp_path)
    assert server.log == [] and not any(tmp_path.iterdir())
    monkeypatch.delenv(fetch.OFFLINE_ENV)
    assert ensure_datasets(["toy"], data_dir=tmp_path) == ["toy"]
    assert ensure_datasets(["toy"], data_dir=tmp_path) == []


def test_run_offline_lists_missing_datasets_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(fetch.OFFLINE_ENV, raising=False)
    out = tmp_path / "out"
    code = main(["run", "--offline", "--data-dir", str(tmp_path / "empty"), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "offline" in err and "regional-dk83" in err and "l1000" in err
    assert "ad-genes" not in err  # it ships with brainexpr
    assert not out.exists()


# ---------------------------------------------------------------- the real registry
def test_every_file_has_a_location_or_a_manual_step():
    archives = registry._load_json()["archives"]
    for name in registry.list_datasets():
        dataset = registry.get_dataset(name)
        assert set(dataset.locations) <= set(dataset.files), name
        for rel in dataset.files:
            sources = dataset.locations.get(rel)
            assert sources or dataset.manual, f"{rel}: neither a location nor a manual step"
            for source in sources or []:
                assert source.get("checked"), source
                if "url" in source:
                    assert re.fullmatch(r"https://raw\.githubusercontent\.com/[\w.-]+/[\w.-]+/"
                                        r"[0-9a-f]{40}/\S+", source["url"]), source["url"]
                    assert source["size"] > 0
                elif "archive" in source:
                    assert source["archive"] in archives and source["member"]
                elif "package" in source:
                    copy = fetch.packaged_copy(dataset, rel)
                    assert fetch.sha256sum(copy) == dataset.files[rel], rel
                else:
                    assert source["derive"] in derive.DERIVERS
                    assert all(i in dataset.files and i != rel for i in source["inputs"])
    for archive in archives.values():
        assert archive["url"].startswith("https://files.pythonhosted.org/")
        assert len(archive["sha256"]) == 64 and archive["size"] > 0


def test_every_dataset_of_the_main_job_needs_no_manual_step(tmp_path):
    plan = fetch.plan_fetch(RUN_DATASETS, data_dir=tmp_path / "empty")
    assert plan.manual == {} and "ad-genes" not in plan.missing
    assert set(plan.missing) == set(RUN_DATASETS) - {"ad-genes"}


@pytest.mark.realdata
def test_main_job_data_on_an_empty_folder_from_a_mirror(data_dir, server, tmp_path, monkeypatch):
    """A fresh data folder and a mirror of the other datasets: nothing stops, 'ad' loads."""
    for name in set(RUN_DATASETS) - {"ad-genes"}:
        for rel in registry.get_dataset(name).files:
            server.routes[f"/m/{urllib.parse.quote(rel)}"] = (data_dir / rel).read_bytes()
    monkeypatch.setenv(fetch.MIRROR_ENV, f"{server.base}/m")
    target = tmp_path / "data"
    assert sorted(prepare_data(data_dir=target, offline=False)) == sorted(
        set(RUN_DATASETS) - {"ad-genes"})
    assert all(dataset_status(n, data_dir=target)["verified"] for n in RUN_DATASETS)
    assert not (target / "genes/ad_genes_yu2025_table_s2.tsv").exists()  # read from the package
    genes = load_gene_set("ad", data_dir=target)
    assert len(genes) == 100 and genes[:3] == ["ABCA1", "ANK3", "APOE"]
    assert load_regional_expression(genes, data_dir=target).shape == (83, 100)
    requests = len(server.log)
    assert prepare_data(data_dir=target, offline=True) == [] and len(server.log) == requests


def test_registry_sizes_match_the_reference_files(data_dir):
    for name in registry.list_datasets():
        for rel, sources in registry.get_dataset(name).locations.items():
            for source in sources:
                if "size" in source:
                    assert source["size"] == (data_dir / rel).stat().st_size, rel


@pytest.mark.parametrize("rel", [
    "pathology/raj-lab-and/derived/ADNI_group_data_86regions.csv",
    "pathology/raj-lab-and/derived/Group_NRC_Amyloid_86regions.csv",
    "pathology/raj-lab-and/derived/AshishADNItstats_forYize_86regions.csv",
])
def test_conversions_reproduce_the_registered_files(data_dir, rel):
    dataset = registry.dataset_of_file(rel)
    (source,) = dataset.locations[rel]
    if source["derive"] == "ashishadnitstats_foryize":
        pytest.importorskip("h5py")
    text = derive.DERIVERS[source["derive"]](*[data_dir / i for i in source["inputs"]])
    assert _sha(text.encode("utf-8")) == dataset.files[rel]


def test_registry_is_valid_json_with_archives_and_datasets():
    content = json.loads((registry.resources.files(registry.__package__)
                          / "registry.json").read_text(encoding="utf-8"))
    assert set(content) == {"archives", "datasets"}


def test_cli_fetch_from_a_mirror(toy_registry, server, tmp_path, capsys):
    server.routes.update({"/m/toy/genes.tsv": TEXT, "/m/toy/table.csv": MEMBER})
    code = main(["fetch", "toy", "--base-url", f"{server.base}/m", "--data-dir", str(tmp_path)])
    printed = capsys.readouterr().out.split()
    assert code == 0 and len(printed) == 3 and all(tmp_path.as_posix() in p for p in printed)
    # the derived file is not on this mirror (404): it is converted here
    assert {p for p, _ in server.log} == {"/m/toy/genes.tsv", "/m/toy/table.csv",
                                          "/m/toy/derived/TABLE.csv"}
    assert main(["fetch", "toy-manual", "--data-dir", str(tmp_path)]) == 2
    assert "ask the owner for secret.txt" in capsys.readouterr().err
