#!/usr/bin/env bash
# A bounded load on a running `strata serve`, from this machine only:
#
#   scripts/serve-load.sh [--port 8080] [--clients 1] [--requests 8] [--max-tokens 128]
#                         [--prompt TEXT] [--seconds 60] [--api-key KEY] [--chat]
#
# Each of --clients threads sends streamed, greedy completions one after the
# other (--requests in all), with stream_options.include_usage, and times
# them: time to first token (request sent -> first text), tokens/s of each
# stream after its first token, and all generated tokens over the wall time.
# It connects to 127.0.0.1 only, and stops sending once --seconds have
# passed (requests in flight then finish; each is also bounded by the
# socket timeout). Python 3 standard library only. Prints one summary line
# per figure; exits 1 when a request failed.
set -euo pipefail
command -v python3 >/dev/null || {
    echo "serve-load.sh: needs python3" >&2
    exit 1
}
exec python3 -c '
import argparse, http.client, json, statistics, sys, threading, time

parser = argparse.ArgumentParser(prog="serve-load.sh")
parser.add_argument("--port", type=int, default=8080)
parser.add_argument("--clients", type=int, default=1)
parser.add_argument("--requests", type=int, default=8)
parser.add_argument("--max-tokens", type=int, default=128)
parser.add_argument("--prompt", default="Once upon a time")
parser.add_argument("--seconds", type=float, default=60)
parser.add_argument("--api-key", default=None)
parser.add_argument("--chat", action="store_true")
args = parser.parse_args(sys.argv[1:])
if args.clients < 1 or args.requests < 1 or args.seconds <= 0:
    parser.error("--clients, --requests and --seconds must be positive")

path = "/v1/chat/completions" if args.chat else "/v1/completions"
body = {"max_tokens": args.max_tokens, "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
if args.chat:
    body["messages"] = [{"role": "user", "content": args.prompt}]
else:
    body["prompt"] = args.prompt
payload = json.dumps(body).encode()
headers = {"Content-Type": "application/json"}
if args.api_key:
    headers["Authorization"] = "Bearer " + args.api_key

deadline = time.monotonic() + args.seconds
lock = threading.Lock()
next_request = [0]
results, errors = [], []

def one_request():
    connection = http.client.HTTPConnection("127.0.0.1", args.port, timeout=max(10.0, args.seconds))
    start = time.monotonic()
    first = None
    tokens = None
    try:
        connection.request("POST", path, body=payload, headers=headers)
        response = connection.getresponse()
        if response.status != 200:
            return None, "status %d: %s" % (response.status, response.read()[:200])
        for raw in response:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            if "error" in event:
                return None, event["error"].get("message")
            for choice in event.get("choices", []):
                text = choice.get("text") if not args.chat else choice.get("delta", {}).get("content")
                if text and first is None:
                    first = time.monotonic()
            if event.get("usage"):
                tokens = event["usage"]["completion_tokens"]
        end = time.monotonic()
    finally:
        connection.close()
    if first is None or tokens is None:
        return None, "no text or no usage in the stream"
    return (first - start, tokens, first, end), None

def client():
    while time.monotonic() < deadline:
        with lock:
            if next_request[0] >= args.requests:
                return
            next_request[0] += 1
        result, error = one_request()
        with lock:
            (results.append(result) if result else errors.append(error))

wall_start = time.monotonic()
threads = [threading.Thread(target=client) for _ in range(args.clients)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
wall = time.monotonic() - wall_start

print("requests: %d done, %d failed, %d clients, %.2f s" % (len(results), len(errors), args.clients, wall))
for error in errors[:5]:
    print("  failed: %s" % error)
if results:
    ttft = [r[0] * 1000 for r in results]
    rates = [(r[1] - 1) / (r[3] - r[2]) for r in results if r[1] > 1 and r[3] > r[2]]
    print("time to first token: median %.2f ms, max %.2f ms" % (statistics.median(ttft), max(ttft)))
    if rates:
        print("per stream after the first token: median %.1f tokens/s" % statistics.median(rates))
    print("generated: %d tokens, %.1f tokens/s over the wall time" % (sum(r[1] for r in results),
                                                                     sum(r[1] for r in results) / wall))
sys.exit(1 if errors else 0)
' "$@"
