"""The openai-compatible generator against a small fake server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from retbench import ConfigError
from retbench_readers.openai_generator import OpenAICompatibleGenerator


class FakeServer:
    def __init__(self, *, fail_first: int = 0) -> None:
        self.requests: list[tuple[str, dict]] = []
        self.fail_first = fail_first
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                return None

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append((self.path, body))
                if server.fail_first > 0:
                    server.fail_first -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                if self.path.endswith("/chat/completions"):
                    question = body["messages"][-1]["content"]
                    payload = {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                               "choices": [{"index": 0, "finish_reason": "stop",
                                            "message": {"role": "assistant", "content": f"Echo: {question}\nmore"}}],
                               "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}}
                else:
                    prompt = body["prompt"]
                    payload = {"id": "x", "object": "text_completion", "created": 0, "model": body["model"],
                               "choices": [{"index": 0, "finish_reason": "length", "text": prompt,
                                            "logprobs": {"tokens": ["a", "b", "c"], "text_offset": [0, 5, 9],
                                                         "token_logprobs": [None, -1.5, -0.25], "top_logprobs": None}}],
                               "usage": {"prompt_tokens": 3, "completion_tokens": 0, "total_tokens": 3}}
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setenv("RETBENCH_HOME", str(tmp_path / "home"))
    fake = FakeServer()
    yield fake
    fake.httpd.shutdown()


def test_chat_request_stop_strings_and_usage(server):
    gen = OpenAICompatibleGenerator(base_url=server.url, model="m", stop=["\n"], system_prompt="Be brief.")
    assert gen.generate(["What is the capital of France?"]) == ["Echo: What is the capital of France?"]
    path, body = server.requests[0]
    assert path == "/v1/chat/completions" and body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert body["temperature"] == 0.0 and body["max_tokens"] == 32 and body["stop"] == ["\n"]
    assert gen.last_usage_ == [{"tokens_in": 7, "tokens_out": 3}]


def test_a_prefix_is_an_assistant_message_to_continue_or_the_end_of_the_prompt(server):
    OpenAICompatibleGenerator(base_url=server.url, model="m").generate(["Q?"], prefix='{"a": ')
    OpenAICompatibleGenerator(base_url=server.url, model="m", api="completions").generate(["Q?"], prefix='{"a": ')
    (_, chat), (_, completion) = server.requests
    assert chat["messages"][-2:] == [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": '{"a": '}]
    assert completion["prompt"] == 'Q?{"a": '


def test_deterministic_requests_are_cached_sampled_ones_never(server):
    greedy = OpenAICompatibleGenerator(base_url=server.url)
    greedy.generate(["q1"])
    OpenAICompatibleGenerator(base_url=server.url).generate(["q1"])
    assert len(server.requests) == 1
    sampled = OpenAICompatibleGenerator(base_url=server.url, temperature=0.7)
    sampled.generate(["q1"])
    sampled.generate(["q1"])
    assert len(server.requests) == 3 and server.requests[-1][1]["seed"] == 0


def test_a_call_can_override_the_generators_sampling(server):
    OpenAICompatibleGenerator(base_url=server.url, temperature=0.7).generate(["q2"], temperature=0.0)
    OpenAICompatibleGenerator(base_url=server.url).generate(["q2"], temperature=0.8, top_p=0.9)
    greedy, sampled = (body for _, body in server.requests[-2:])
    assert greedy["temperature"] == 0.0 and "seed" not in greedy
    assert sampled["temperature"] == 0.8 and sampled["top_p"] == 0.9 and sampled["seed"] == 0


def test_server_errors_are_retried(tmp_path, monkeypatch):
    monkeypatch.setenv("RETBENCH_HOME", str(tmp_path / "home"))
    fake = FakeServer(fail_first=2)
    try:
        assert OpenAICompatibleGenerator(base_url=fake.url, max_retries=3).generate(["q"]) == ["Echo: q\nmore"]
        assert len(fake.requests) == 3
    finally:
        fake.httpd.shutdown()


def test_loglikelihood_sums_the_continuations_tokens(server):
    gen = OpenAICompatibleGenerator(base_url=server.url)
    assert gen.loglikelihood(["abcd "], ["efgh ij"]) == [pytest.approx(-1.75)]
    assert server.requests[0][1]["echo"] is True and server.requests[0][1]["max_tokens"] == 0


def test_key_is_never_part_of_the_parameters_and_url_is_required(monkeypatch):
    assert OpenAICompatibleGenerator(api_key="secret").get_params()["api_key"] is None
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_BASE_URL"):
        OpenAICompatibleGenerator().generate(["q"])
