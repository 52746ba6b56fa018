"""Several users at once: 8 streaming clients on --parallel 4 all finish,
each with the text it gets alone; requests beyond the sequences queue, and
beyond the queue get 503; /metrics counts it all; a client that leaves
mid-stream frees its sequence."""
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_common import Server, check, finish, skip  # noqa: E402

try:
    import openai
except ImportError:
    skip("Python's openai package is not installed (pip install openai); CI installs it")

PROMPTS = ["Once upon a time", "The little dog", "Tom had a red ball", "One day, a bird", "Sue was sad because",
           "The sun was hot", "A big bear lived", "Mom said"]
MODEL = "stories260K"


def streamed(client, prompt, max_tokens, chat):
    if chat:
        chunks = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": prompt}],
                                                max_tokens=max_tokens, temperature=0, stream=True,
                                                stream_options={"include_usage": True})
        pieces, usage = [], None
        for chunk in chunks:
            if chunk.choices:
                pieces.append(chunk.choices[0].delta.content or "")
            if chunk.usage:
                usage = chunk.usage
        return "".join(pieces), usage
    chunks = client.completions.create(model=MODEL, prompt=prompt, max_tokens=max_tokens, temperature=0, stream=True,
                                       stream_options={"include_usage": True})
    pieces, usage = [], None
    for chunk in chunks:
        if chunk.choices:
            pieces.append(chunk.choices[0].text)
        if chunk.usage:
            usage = chunk.usage
    return "".join(pieces), usage


def eight_clients():
    server = Server("--parallel", "4", "--queue", "8")
    try:
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0, timeout=300)
        jobs = [(prompt, 150, i % 2 == 1) for i, prompt in enumerate(PROMPTS)]
        alone = [streamed(client, *job)[0] for job in jobs]
        before = server.metrics()
        results = [None] * len(jobs)
        errors = []
        most_queued = [0]
        start = threading.Barrier(len(jobs) + 1)

        def worker(index):
            start.wait()
            try:
                results[index] = streamed(client, *jobs[index])
            except Exception as error:  # reported below
                errors.append("%d: %r" % (index, error))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(jobs))]
        for thread in threads:
            thread.start()
        start.wait()
        while any(thread.is_alive() for thread in threads):
            samples = server.metrics()
            most_queued[0] = max(most_queued[0], samples.get("strata_requests_queued", 0))
            check(samples.get("strata_requests_active", 0) <= 4, "more than 4 requests active at once")
            time.sleep(0.01)
        for thread in threads:
            thread.join()
        check(not errors, "clients failed: %s" % errors)
        for i, job in enumerate(jobs):
            if results[i] is None:
                continue
            text, usage = results[i]
            check(text == alone[i], "client %d (%r, chat %s): %r alone, %r with 7 others" % (i, job[0], job[2],
                                                                                             alone[i], text))
            check(usage is not None and usage.completion_tokens > 0, "client %d: usage %r" % (i, usage))
        after = server.metrics()
        served = sum(after.get('strata_requests_total{endpoint="%s",status="200"}' % e, 0) -
                     before.get('strata_requests_total{endpoint="%s",status="200"}' % e, 0)
                     for e in ("/v1/completions", "/v1/chat/completions"))
        check(served == 8, "/metrics counts %r completions answered 200, expected 8" % served)
        generated = after["strata_generated_tokens_total"] - before["strata_generated_tokens_total"]
        wanted = sum(r[1].completion_tokens for r in results if r and r[1])
        check(generated == wanted, "/metrics counts %r generated tokens, the clients got %r" % (generated, wanted))
        check(after["strata_time_to_first_token_seconds_count"] - before["strata_time_to_first_token_seconds_count"]
              == 8, "time-to-first-token histogram count")
        print("at most %d requests queued" % most_queued[0])
        check(most_queued[0] >= 1, "no request was ever seen queued (most %r)" % most_queued[0])
        check(after["strata_requests_active"] == 0 and after["strata_requests_queued"] == 0,
              "requests still active or queued after all finished")
        check(after["strata_sequences"] == 4 and after["strata_kv_cache_positions"] == 4 * 2048,
              "sequences gauge %r, KV positions %r" % (after["strata_sequences"], after["strata_kv_cache_positions"]))
    finally:
        check(server.stop() == 0, "strata serve did not exit 0")


def open_stream(server, prompt, max_tokens):
    """Starts a streamed completion on a raw socket and reads until the first
    event arrived; returns the socket."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    body = ('{"prompt": "%s", "max_tokens": %d, "temperature": 0, "stream": true}' % (prompt, max_tokens)).encode()
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    received = b""
    while b"data: " not in received:
        piece = sock.recv(4096)
        if not piece:
            break
        received += piece
    return sock


def queue_and_disconnect():
    server = Server("--parallel", "1", "--queue", "1")
    try:
        # a long request holds the one sequence; a second waits; a third is refused
        holder = open_stream(server, "Once upon a time", 2000)
        queued = {}

        def second():
            queued["reply"] = server.post_json("/v1/completions", {"prompt": "The dog", "max_tokens": 3})

        waiting = threading.Thread(target=second)
        waiting.start()
        deadline = time.time() + 10
        while server.metrics().get("strata_requests_queued", 0) < 1 and time.time() < deadline:
            time.sleep(0.005)
        status, reply = server.post_json("/v1/completions", {"prompt": "The cat", "max_tokens": 3})
        check(status == 503 and "busy" in str(reply), "a third request with the queue full: %r %r" % (status, reply))
        # the holder leaves mid-stream: its sequence frees, the queued one runs
        before = server.metrics()["strata_generated_tokens_total"]
        holder.close()
        waiting.join(60)
        check(queued.get("reply", (0,))[0] == 200, "the queued request: %r" % (queued.get("reply"),))
        deadline = time.time() + 10
        while server.metrics().get("strata_requests_active", 1) > 0 and time.time() < deadline:
            time.sleep(0.01)
        after = server.metrics()
        check(after["strata_requests_active"] == 0 and after["strata_kv_cache_used_positions"] == 0,
              "the sequence was not freed after the client left")
        holder_tokens = after["strata_generated_tokens_total"] - before - 3
        print("the holder generated %d tokens before it was cancelled" % holder_tokens)
        check(holder_tokens < 2000, "the request whose client left generated %r tokens (all 2000: not cancelled)"
              % holder_tokens)
        status, _, _ = server.request("GET", "/health")
        check(status == 200, "/health after the disconnect: %d" % status)
        # SIGTERM in the middle of a stream: the step finishes, the server exits 0
        streaming = open_stream(server, "Once upon a time", 2000)
        status = server.stop()
        check(status == 0, "SIGTERM during a stream: exit status %r" % status)
        streaming.settimeout(10)
        rest = b""
        try:
            while True:
                piece = streaming.recv(65536)
                if not piece:
                    break
                rest += piece
        except OSError:
            pass
        streaming.close()
        # the stop waits for the responses in flight: the stream ends with the
        # "shutting down" event (or its own end, if it finished first) and the
        # chunked body's last chunk, never cut off
        check(rest.endswith(b"0\r\n\r\n") and (b"shutting down" in rest or b"data: [DONE]" in rest),
              "the stream cut by SIGTERM ended oddly: %r" % rest[-200:])
    finally:
        server.stop()


eight_clients()
queue_and_disconnect()
finish("serve concurrency")
