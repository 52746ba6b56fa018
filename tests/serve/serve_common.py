"""Helpers for the `strata serve` tests: start a server on a free port,
wait until it is ready, stop it with a signal, and small HTTP helpers.

Environment (set by ctest): STRATA (the strata command), STRATA_MODELS_DIR.
"""
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
STRATA = os.environ.get("STRATA", os.path.join(HERE, "..", "..", "build", "strata"))
MODELS = os.environ.get("STRATA_MODELS_DIR", os.path.join(HERE, "..", "..", "models"))
STORIES = os.path.join(MODELS, "stories260K.gguf")

failures = []


def check(condition, message):
    """Records a failure (the test goes on, and exits 1 at the end)."""
    if not condition:
        failures.append(message)
        print("FAIL: " + message, flush=True)
    return condition


def finish(name):
    if failures:
        print("%s: %d failure(s)" % (name, len(failures)))
        sys.exit(1)
    print("%s: all checks passed" % name)
    sys.exit(0)


def skip(message):
    print("SKIP: " + message)
    sys.exit(77)


class Server:
    """A running `strata serve` on a free port of 127.0.0.1."""

    def __init__(self, *args, model=STORIES, env=None, ready_timeout=120):
        command = [STRATA, "serve", "-m", model, "--port", "0"] + list(args)
        self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, text=True)
        self.stderr_lines = []
        self.port = None
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        if not self._ready.wait(ready_timeout) or self.port is None:
            self.proc.kill()
            raise RuntimeError("strata serve did not get ready:\n" + "".join(self.stderr_lines))

    def _read_stderr(self):
        for line in self.proc.stderr:
            self.stderr_lines.append(line)
            found = re.search(r"listening on http://[^ ]*:(\d+)/", line)
            if found:
                self.port = int(found.group(1))
            if "strata serve: ready" in line:
                self._ready.set()
        self._ready.set()

    @property
    def base_url(self):
        return "http://127.0.0.1:%d" % self.port

    def request(self, method, path, body=None, headers=None, timeout=60):
        """(status, headers dict, body bytes) of one request on a new connection."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def post_json(self, path, body, headers=None, timeout=60):
        status, _, data = self.request("POST", path, body,
                                       dict({"Content-Type": "application/json"}, **(headers or {})), timeout)
        try:
            return status, json.loads(data)
        except ValueError:
            return status, data

    def metrics(self):
        """The /metrics samples as {'name{labels}': value}."""
        status, _, data = self.request("GET", "/metrics")
        samples = {}
        for line in data.decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                samples[name] = float(value)
        return samples

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Sends sig; returns the exit status (None if it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            status = None
        self._reader.join(5)
        return status


def run_reference(prompt, n_predict, *extra):
    """`strata run --temp 0` on the bundled model: (generated text, prompt tokens)."""
    result = subprocess.run([STRATA, "run", "-m", STORIES, "-p", prompt, "-n", str(n_predict), "--temp", "0",
                             "--no-echo"] + list(extra), capture_output=True, text=True, check=True)
    text = result.stdout[:-1] if result.stdout.endswith("\n") else result.stdout
    found = re.search(r"prompt (\d+) tokens", result.stderr)
    return text, int(found.group(1)) if found else None


def render_chat(messages, *template_args):
    """The prompt `strata template` renders for messages with the
    generation prompt (the model's template, or --chat-template FILE)."""
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(messages, handle)
        path = handle.name
    try:
        result = subprocess.run([STRATA, "template", "-m", STORIES, "--messages", path] +
                                list(template_args), capture_output=True, text=True, check=True)
    finally:
        os.unlink(path)
    return result.stdout


def tokenize(text):
    """The token ids `strata tokenize --bos` gives (BOS as stories260K asks)."""
    result = subprocess.run([STRATA, "tokenize", "-m", STORIES, "-p", text, "--bos", "--ids-only"],
                            capture_output=True, text=True, check=True)
    return [int(word) for word in result.stdout.split()]


def sse_events(response_lines):
    """The JSON payloads of 'data:' lines until [DONE]; ([payloads], saw_done)."""
    payloads = []
    for raw in response_lines:
        line = raw.decode() if isinstance(raw, bytes) else raw
        line = line.rstrip("\r\n")
        if not line.startswith("data: "):
            continue
        data = line[len("data: "):]
        if data == "[DONE]":
            return payloads, True
        payloads.append(json.loads(data))
    return payloads, False
