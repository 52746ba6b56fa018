"""Hostile and broken requests each get their status, and the server keeps
answering /health afterwards. Needs only Python's standard library."""
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_common import Server, check, finish  # noqa: E402

C, CHAT = "/v1/completions", "/v1/chat/completions"
MSG = [{"role": "user", "content": "hi"}]

# (path, body, expected status, text the error message must hold, param)
CASES = [
    (C, b'{"prompt": "x"', 400, "not valid JSON", None),
    (C, b"", 400, "not valid JSON", None),
    (C, b"\xff\xfe{}", 400, "not valid JSON", None),
    (C, b'{"prompt": "\xc3\x28"}', 400, "not valid JSON", None),
    (C, b'{"prompt": "a\\u0000b"}', 400, "not valid JSON", None),
    (C, b"[" * 60000, 400, "not valid JSON", None),
    (C, b'"just a string"', 400, "must be a JSON object", None),
    (C, b'{"prompt": 1e999}', 400, "not valid JSON", None),
    (C, b"{}", 400, "'prompt' is missing", "prompt"),
    (C, {"prompt": 5}, 400, "'prompt' must be a string", "prompt"),
    (C, {"prompt": []}, 400, "empty list", "prompt"),
    (C, {"prompt": [1, -2]}, 400, "not a token id", "prompt"),
    (C, {"prompt": [1, 2.5]}, 400, "not a token id", "prompt"),
    (C, {"prompt": [1, 100000]}, 400, "outside the vocabulary", "prompt"),
    (C, {"prompt": ["a", "b"]}, 400, "one per request", "prompt"),
    (C, {"prompt": ""}, 200, None, None),  # BOS alone is a prompt
    (C, {"prompt": "x", "temperature": "hot"}, 400, "'temperature' must be a number", "temperature"),
    (C, {"prompt": "x", "temperature": 7}, 400, "must be in [0, 2]", "temperature"),
    (C, {"prompt": "x", "top_p": -1}, 400, "'top_p'", "top_p"),
    (C, {"prompt": "x", "max_tokens": -1}, 400, "'max_tokens'", "max_tokens"),
    (C, {"prompt": "x", "max_tokens": 1.5}, 400, "must be an integer", "max_tokens"),
    (C, {"prompt": "x", "max_tokens": 99999999999999999999}, 400, "not valid JSON", None),
    (C, {"prompt": "x", "seed": "s"}, 400, "'seed' must be an integer", "seed"),
    (C, {"prompt": "x", "top_k": -3}, 400, "'top_k'", "top_k"),
    (C, {"prompt": "x", "stream": "yes"}, 400, "'stream' must be a boolean", "stream"),
    (C, {"prompt": "x", "stream_options": {"include_usage": True}}, 400, "only allowed with", "stream_options"),
    (C, {"prompt": "x", "stop": 3}, 400, "'stop' must be a string", "stop"),
    (C, {"prompt": "x", "stop": ["a", 1]}, 400, "'stop' must be a string", "stop"),
    (C, {"prompt": "x", "stop": [""]}, 400, "must not be empty", "stop"),
    (C, {"prompt": "x", "stop": ["s%d" % i for i in range(17)]}, 400, "at most 16", "stop"),
    (C, {"prompt": "x", "stop": "y" * 300}, 400, "at most 256", "stop"),
    (C, {"prompt": "x", "n": 2}, 400, "only one choice", "n"),
    (C, {"prompt": "x", "n": 1, "max_tokens": 2}, 200, None, None),
    (C, {"prompt": "x", "best_of": 3}, 400, "best_of", "best_of"),
    (C, {"prompt": "x", "logit_bias": {"5": 10}}, 400, "logit_bias", "logit_bias"),
    (C, {"prompt": "x", "logprobs": 2}, 400, "logprobs", "logprobs"),
    (C, {"prompt": "x", "echo": True}, 400, "echo", "echo"),
    (C, {"prompt": "x", "suffix": "end"}, 400, "suffix", "suffix"),
    (C, {"prompt": "x", "model": 3}, 400, "'model' must be a string", "model"),
    (C, {"prompt": "word " * 3000, "max_tokens": 1}, 400, "tokens but the context holds 2048 positions", "prompt"),
    (CHAT, {}, 400, "'messages' is missing", "messages"),
    (CHAT, {"messages": []}, 400, "'messages' is empty", "messages"),
    (CHAT, {"messages": "hi"}, 400, "must be a list of messages", "messages"),
    (CHAT, {"messages": [5]}, 400, "must be an object", "messages"),
    (CHAT, {"messages": [{"content": "x"}]}, 400, "role must be a string", "messages"),
    (CHAT, {"messages": [{"role": "wizard", "content": "x"}]}, 400, "is not one of", "messages"),
    (CHAT, {"messages": [{"role": "user", "content": 5}]}, 400, "content must be a string", "messages"),
    (CHAT, {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}, 400,
     "only parts of type 'text'", "messages"),
    (CHAT, {"messages": MSG, "tools": [{"type": "function", "function": {"name": "f"}}]}, 400, "tools", "tools"),
    (CHAT, {"messages": MSG, "tool_choice": "auto"}, 400, "tools", "tool_choice"),
    (CHAT, {"messages": MSG, "response_format": {"type": "json_object"}}, 400, "response format", "response_format"),
    (CHAT, {"messages": MSG, "response_format": {"type": "text"}, "tools": [], "max_tokens": 2}, 200, None, None),
    (CHAT, {"messages": MSG, "logprobs": True}, 400, "logprobs", "logprobs"),
    (CHAT, {"messages": MSG, "max_completion_tokens": 0}, 400, "max_completion_tokens", "max_completion_tokens"),
    (CHAT, {"messages": [{"role": "user", "content": "word " * 3000}]}, 400, "tokens but the context holds", "messages"),
]


def status_cases(server):
    for path, body, want, text, param in CASES:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        status, _, reply = server.request("POST", path, data, {"Content-Type": "application/json"})
        label = "%s %r" % (path, data[:80])
        check(status == want, "%s: status %d, expected %d (%r)" % (label, status, want, reply[:200]))
        if want == 200 or status != want:
            continue
        try:
            error = json.loads(reply)["error"]
        except (ValueError, KeyError, TypeError):
            check(False, "%s: the error is not OpenAI's shape: %r" % (label, reply[:200]))
            continue
        check(text in error["message"], "%s: message %r lacks %r" % (label, error["message"], text))
        check(error["param"] == param, "%s: param %r, expected %r" % (label, error["param"], param))
        check(error["type"] == "invalid_request_error", "%s: type %r" % (label, error["type"]))


def route_cases(server):
    for method, path, want in [("GET", "/nope", 404), ("GET", "/v1/completions", 405), ("POST", "/health", 405),
                               ("DELETE", "/v1/models", 405), ("GET", "/v1/chat/completions/../../etc", 404),
                               ("GET", "/health", 200), ("GET", "/metrics", 200), ("GET", "/v1/models", 200)]:
        status, headers, _ = server.request(method, path)
        check(status == want, "%s %s: %d, expected %d" % (method, path, status, want))


def body_limits(server):
    # --max-body 64K: a declared length over it is refused before the body is read
    big = b'{"prompt": "' + b"a" * 70000 + b'"}'
    status, _, reply = server.request("POST", C, big, {"Content-Type": "application/json"})
    check(status == 413 and b"max-body" in reply, "a 70 KB body: %d %r" % (status, reply[:120]))
    # chunked, so no length is declared: refused once it passes the limit
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    try:
        for _ in range(40):
            piece = b"b" * 4096
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        sock.sendall(b"0\r\n\r\n")
    except OSError:
        pass  # the server may answer and close before the client is done
    reply = b""
    try:
        while True:
            piece = sock.recv(4096)
            if not piece:
                break
            reply += piece
    except OSError:
        pass
    sock.close()
    check(reply.startswith(b"HTTP/1.1 413"), "a chunked 160 KB body: %r" % reply[:120])
    # a body of exactly the limit is read (and is bad JSON)
    exact = b" " * (64 * 1024)
    status, _, _ = server.request("POST", C, exact)
    check(status == 400, "a body of exactly --max-body: %d" % status)


def raw_garbage(server):
    """Bytes that are not HTTP, a request cut short, a client that says
    nothing: none of them may hurt the server."""
    payloads = [b"\x00\x01\x02garbage\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"POST /v1/completions HTTP/1.1\r\n",
                b"POST /v1/completions HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"pro",
                b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-Long: " + b"h" * 100000 + b"\r\n\r\n", b""]
    for payload in payloads:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        try:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
            sock.recv(4096)
        except OSError:
            pass
        sock.close()
    # many connections at once that send nothing, then leave
    idle = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(20)]
    status, _, _ = server.request("GET", "/health")
    check(status == 200, "/health with 20 silent connections open: %d" % status)
    for sock in idle:
        sock.close()


def main():
    server = Server("--max-body", "64K")
    try:
        status_cases(server)
        route_cases(server)
        body_limits(server)
        raw_garbage(server)
        time.sleep(0.2)
        status, _, body = server.request("GET", "/health")
        check(status == 200 and json.loads(body)["status"] == "ok", "/health at the end: %d %r" % (status, body))
        check(server.proc.poll() is None, "the server died")
    finally:
        status = server.stop()
        check(status == 0, "strata serve exited with %r after SIGTERM" % status)
    finish("serve hostile requests")


main()
