"""A key given as ``--generator-arg api_key=...`` reaches the server but no file retbench writes
(issue 14, probe "secret leak")."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from test_readers_openai import FakeServer

from retbench.cli import cli

KEY = "sk-test-0123456789abcdef"


def test_api_key_is_sent_but_never_written(tmp_path, monkeypatch):
    home, records, boards = tmp_path / "home", tmp_path / "records", tmp_path / "boards"
    monkeypatch.setenv("RETBENCH_HOME", str(home))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    fake = FakeServer()
    seen: list[str] = []
    handler = fake.httpd.RequestHandlerClass
    original = handler.do_POST

    def do_post(self):
        seen.append(self.headers.get("Authorization", ""))
        original(self)

    handler.do_POST = do_post
    try:
        runner = CliRunner()
        result = runner.invoke(cli, ["run", "--retriever", "bm25", "--reader", "rag", "--dataset", "sample",
                                     "--limit", "2", "--generator", "openai-compatible",
                                     "--generator-arg", f"base_url={fake.url}", "--generator-arg", f"api_key={KEY}",
                                     "--save-record", str(records), "--json"])
        assert result.exit_code == 0, result.output
        built = runner.invoke(cli, ["leaderboard", "build", "--records", str(records), "--out", str(boards),
                                    "--expected", str(tmp_path / "none.toml")])
        assert built.exit_code == 0, built.output
    finally:
        fake.httpd.shutdown()
    assert seen and all(h == f"Bearer {KEY}" for h in seen), "the key is used"
    assert KEY not in result.output
    written = [p for folder in (home, records, boards) for p in Path(folder).rglob("*") if p.is_file()]
    assert any(p.name == "record.json" for p in written) and any(p.suffix == ".md" for p in written)
    leaks = [str(p) for p in written if KEY.encode() in p.read_bytes()]
    assert not leaks, f"key written in clear to {leaks}"
    assert "api_key=REDACTED" in (next(boards.glob("*.md"))).read_text()
