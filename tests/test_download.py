"""Downloads against a local HTTP server on 127.0.0.1: checksums, retries, resume, safe
extraction, offline mode, and a BEIR dataset fetched, extracted and loaded by name."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from retbench.data.download import DownloadError, Source, UnsafeArchiveError, extract, fetch


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files from the server's folder, honouring 'Range: bytes=N-', and counts requests."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.requests.append((self.path, self.headers.get("Range")))
        path = Path(self.server.folder) / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = int(self.headers["Range"].split("=")[1].rstrip("-")) if self.headers.get("Range") else 0
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.delenv("RETBENCH_OFFLINE")
    folder = tmp_path / "served"
    folder.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    httpd.folder, httpd.requests = folder, []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd, folder, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def zip_bytes(members: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, text in members.items():
            bundle.writestr(name, text)
    return buffer.getvalue()


def test_download_verifies_and_caches(server, tmp_path):
    httpd, folder, url = server
    payload = b"x" * 5000
    (folder / "data.bin").write_bytes(payload)
    source = Source(f"{url}/data.bin", sha256=hashlib.sha256(payload).hexdigest())
    path = fetch(source, tmp_path / "downloads")
    assert path.read_bytes() == payload
    fetch(source, tmp_path / "downloads")
    assert len(httpd.requests) == 1, "a verified cached file is not downloaded again"


def test_corrupt_download_is_refused_and_retried(server, tmp_path):
    httpd, folder, url = server
    (folder / "data.bin").write_bytes(b"corrupted bytes")
    source = Source(f"{url}/data.bin", md5=hashlib.md5(b"the real bytes").hexdigest())
    with pytest.raises(DownloadError, match="checksum mismatch after 3 attempts"):
        fetch(source, tmp_path / "downloads", retries=2)
    assert len(httpd.requests) == 3
    assert list((tmp_path / "downloads").glob("data.bin*")) == [tmp_path / "downloads" / "data.bin.lock"]


def test_interrupted_download_resumes_with_a_range_request(server, tmp_path):
    httpd, folder, url = server
    payload = bytes(range(256)) * 40
    (folder / "big.bin").write_bytes(payload)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    (downloads / "big.bin.part").write_bytes(payload[:3000])
    path = fetch(Source(f"{url}/big.bin", sha256=hashlib.sha256(payload).hexdigest()), downloads)
    assert path.read_bytes() == payload
    assert httpd.requests == [("/big.bin", "bytes=3000-")]


def test_missing_file_is_a_clear_error(server, tmp_path):
    _, _, url = server
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch(Source(f"{url}/nope.zip"), tmp_path)


def test_offline_mode_forbids_downloads(server, tmp_path, monkeypatch):
    _, folder, url = server
    (folder / "a.bin").write_bytes(b"a")
    monkeypatch.setenv("RETBENCH_OFFLINE", "1")
    with pytest.raises(DownloadError, match="RETBENCH_OFFLINE"):
        fetch(Source(f"{url}/a.bin"), tmp_path)


@pytest.mark.parametrize("name", ["../escape.txt", "/abs/escape.txt", "ok/../../escape.txt"])
def test_path_escaping_zip_is_rejected(tmp_path, name):
    archive = tmp_path / "evil.zip"
    archive.write_bytes(zip_bytes({"fine.txt": "ok", name: "pwned"}))
    with pytest.raises(UnsafeArchiveError, match="outside"):
        extract(archive, tmp_path / "out" / "target")
    assert not (tmp_path / "out" / "escape.txt").exists() and not (tmp_path / "escape.txt").exists()
    assert not (tmp_path / "out" / "target").exists(), "nothing is extracted from a refused archive"


def test_tar_with_a_link_is_rejected(tmp_path):
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as bundle:
        link = tarfile.TarInfo("data/link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        bundle.addfile(link)
    with pytest.raises(UnsafeArchiveError, match="link"):
        extract(archive, tmp_path / "target")


def test_a_beir_dataset_downloads_extracts_and_loads_by_name(server, tmp_path, monkeypatch):
    """`retbench datasets prepare scifact` against a fake mirror serving a small BEIR zip."""
    from click.testing import CliRunner

    from retbench.cli import cli
    from retbench.data.datasets import catalog

    _, folder, url = server
    corpus = "\n".join(json.dumps({"_id": f"d{i}", "title": "", "text": f"doc {i}"}) for i in range(3))
    archive = zip_bytes({"scifact/corpus.jsonl": corpus, "scifact/queries.jsonl": '{"_id": "q1", "text": "doc"}',
                         "scifact/qrels/test.tsv": "query-id\tcorpus-id\tscore\nq1\td1\t1\n"})
    (folder / "scifact.zip").write_bytes(archive)
    monkeypatch.setattr(catalog, "BEIR_URL", url + "/{}.zip")
    entry = catalog.BEIR["scifact"]
    monkeypatch.setitem(catalog.BEIR, "scifact", type(entry)(**{**vars(entry), "md5": hashlib.md5(archive).hexdigest()}))
    monkeypatch.setenv("RETBENCH_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(cli, ["datasets", "prepare", "scifact"])
    assert result.exit_code == 0, result.output
    assert "3 documents, 1 queries" in result.output
    listed = CliRunner().invoke(cli, ["datasets", "list", "--json"])
    row = next(r for r in json.loads(listed.output) if r["name"] == "scifact")
    assert row["cached_bytes"] > 0


def test_without_a_published_checksum_the_first_download_is_pinned(server, tmp_path):
    _, folder, url = server
    (folder / "q.csv").write_bytes(b"original")
    downloads = tmp_path / "downloads"
    path = fetch(Source(f"{url}/q.csv"), downloads)
    assert (downloads / "q.csv.sha256").read_text().strip() == hashlib.sha256(b"original").hexdigest()
    path.write_bytes(b"tampered")
    (folder / "q.csv").write_bytes(b"original")
    assert fetch(Source(f"{url}/q.csv"), downloads).read_bytes() == b"original", "a changed file is fetched again"


def test_dpr_questions_are_downloaded_into_the_cache(server, tmp_path, monkeypatch):
    from retbench.data.datasets import dpr

    _, folder, url = server
    (folder / "nq-test.qa.csv").write_text("who wrote hamlet\t['Shakespeare']\n", encoding="utf-8")
    monkeypatch.setattr(dpr, "DPR_RETRIEVER_URL", url + "/")
    split = dpr.NaturalQuestions().load("test", workdir=tmp_path / "prepared")
    assert split.queries == {"0": "who wrote hamlet"}
    assert (tmp_path / "prepared" / "sources" / "nq" / "nq-test.qa.csv").is_file()


def test_miracl_topics_judgments_and_corpus_shards_download(server, tmp_path, monkeypatch):
    from retbench.data.datasets import miracl

    _, folder, url = server
    for kind, text in (("topics", "1\tSwali la kwanza?\n"), ("qrels", "1\tQ0\t7#0\t1\n")):
        path = folder / "m" / "miracl-v1.0-sw" / kind / f"{kind}.miracl-v1.0-sw-dev.tsv"
        path.parent.mkdir(parents=True)
        path.write_text(text, encoding="utf-8")
    shards = folder / "c" / "miracl-corpus-v1.0-sw"
    shards.mkdir(parents=True)
    import gzip

    for shard, doc in enumerate(("7#0", "8#0")):
        record = json.dumps({"docid": doc, "title": "T", "text": f"maandishi {doc}"}, ensure_ascii=False)
        (shards / f"docs-{shard}.jsonl.gz").write_bytes(gzip.compress(record.encode()))
    monkeypatch.setattr(miracl, "MIRACL_URL", url + "/m/")
    monkeypatch.setattr(miracl, "MIRACL_CORPUS_URL", url + "/c/")
    split = miracl.Miracl(location="sw", corpus="download").load("dev", workdir=tmp_path / "prepared")
    assert split.queries == {"1": "Swali la kwanza?"}
    assert sorted(split.corpus.ids) == ["7#0", "8#0"]
