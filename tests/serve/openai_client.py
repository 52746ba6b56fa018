"""`strata serve` against Python's openai client: models, completions and
chat completions (streamed and not), usage, stop strings, seeds, errors and
the API key. The reference for greedy text is `strata run --temp 0`."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_common import HERE, Server, check, finish, render_chat, run_reference, skip, tokenize  # noqa: E402

try:
    import openai
except ImportError:
    skip("Python's openai package is not installed (pip install openai); CI installs it")

PROMPTS = ["Once upon a time", "The little dog", "Lily and Tom went to the park. They"]


def completion_checks(client, model):
    for prompt in PROMPTS:
        reference, n_prompt = run_reference(prompt, 40)
        reply = client.completions.create(model=model, prompt=prompt, max_tokens=40, temperature=0)
        choice = reply.choices[0]
        check(choice.text == reference, "completion of %r: %r, strata run gives %r" % (prompt, choice.text, reference))
        check(reply.object == "text_completion" and reply.id.startswith("cmpl-") and reply.model == model,
              "completion envelope: %r %r %r" % (reply.object, reply.id, reply.model))
        check(reply.usage.prompt_tokens == n_prompt and reply.usage.completion_tokens == 40 and
              reply.usage.total_tokens == n_prompt + 40 and choice.finish_reason == "length",
              "completion usage of %r: %r, finish %r (prompt has %r tokens)" %
              (prompt, reply.usage, choice.finish_reason, n_prompt))
        # the same prompt as token ids
        ids = tokenize(prompt)
        by_ids = client.completions.create(model=model, prompt=ids, max_tokens=40, temperature=0)
        check(by_ids.choices[0].text == reference, "token-id prompt %r: %r" % (ids, by_ids.choices[0].text))
        # streamed: the same text in pieces, then the finish, then usage
        chunks = list(client.completions.create(model=model, prompt=prompt, max_tokens=40, temperature=0, stream=True,
                                                stream_options={"include_usage": True}))
        text = "".join(c.choices[0].text for c in chunks if c.choices)
        finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        check(text == reference, "streamed completion of %r: %r" % (prompt, text))
        check(finishes == ["length"], "streamed finish reasons %r" % finishes)
        check(chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 40 and
              chunks[-1].usage.prompt_tokens == n_prompt and chunks[-1].choices == [],
              "streamed usage chunk: %r" % chunks[-1])


def chat_checks(client, model):
    messages = [{"role": "system", "content": "You tell stories."}, {"role": "user", "content": "Tell me about a cat."}]
    # stories260K has no chat template: the plain fallback, as `strata template` renders it
    plain = render_chat(messages)
    check(plain == "system: You tell stories.\n\nuser: Tell me about a cat.\n\nassistant:",
          "the fallback prompt: %r" % plain)
    reference, n_prompt = run_reference(plain, 30)
    reply = client.chat.completions.create(model=model, messages=messages, max_tokens=30, temperature=0)
    message = reply.choices[0].message
    check(message.role == "assistant" and message.content == reference,
          "chat reply %r, strata run on the plain format gives %r" % (message.content, reference))
    check(reply.object == "chat.completion" and reply.id.startswith("chatcmpl-"), "chat envelope %r" % reply.object)
    check(reply.usage.prompt_tokens == n_prompt and reply.usage.completion_tokens == 30,
          "chat usage %r (prompt has %r tokens)" % (reply.usage, n_prompt))
    with_limit = client.chat.completions.create(model=model, messages=messages, max_completion_tokens=7,
                                                temperature=0)
    check(with_limit.usage.completion_tokens == 7 and with_limit.choices[0].finish_reason == "length",
          "max_completion_tokens 7: %r" % with_limit.usage)
    stream = client.chat.completions.create(model=model, messages=messages, max_tokens=30, temperature=0, stream=True)
    chunks = list(stream)
    roles = [c.choices[0].delta.role for c in chunks if c.choices and c.choices[0].delta.role]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    check(roles == ["assistant"], "streamed chat roles %r" % roles)
    check(text == reference, "streamed chat %r, expected %r" % (text, reference))
    check(chunks[-1].choices[0].finish_reason == "length" and all(c.object == "chat.completion.chunk" for c in chunks),
          "streamed chat end %r" % chunks[-1])
    # content as a list of text parts
    parts = client.chat.completions.create(
        model=model, temperature=0, max_tokens=30,
        messages=[{"role": "system", "content": [{"type": "text", "text": "You tell "}, {"type": "text",
                                                                                          "text": "stories."}]},
                  {"role": "user", "content": "Tell me about a cat."}])
    check(parts.choices[0].message.content == reference, "content parts: %r" % parts.choices[0].message.content)


def template_checks():
    """--chat-template: a real template (ChatML, Qwen2.5's) replaces the
    fallback; the reply is `strata run --temp 0` on what `strata template`
    renders with that file."""
    template = os.path.join(HERE, "..", "data", "templates", "Qwen-Qwen2.5-7B-Instruct.jinja")
    messages = [{"role": "user", "content": "Tell me about a cat."}]
    prompt = render_chat(messages, "--chat-template", template)
    check(prompt.startswith("<|im_start|>system") and prompt.endswith("<|im_start|>assistant\n"),
          "the Qwen2.5 prompt: %r" % prompt)
    reference, n_prompt = run_reference(prompt, 20, "--special")
    server = Server("--chat-template", template)
    try:
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0)
        reply = client.chat.completions.create(model="stories260K", messages=messages, max_tokens=20, temperature=0)
        check(reply.choices[0].message.content == reference and reply.usage.prompt_tokens == n_prompt,
              "chat with --chat-template: %r (%d prompt tokens), strata run on the rendered prompt gives %r (%d)" %
              (reply.choices[0].message.content, reply.usage.prompt_tokens, reference, n_prompt))
        check(not any("no chat template" in line for line in server.stderr_lines),
              "the fallback was announced with --chat-template")
    finally:
        check(server.stop() == 0, "the templated server did not exit 0")
    # a template strata cannot use stops the server before it serves
    import subprocess
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".jinja", delete=False) as handle:
        handle.write("{% include 'other.jinja' %}")
        bad = handle.name
    try:
        result = subprocess.run([os.environ.get("STRATA", "strata"), "serve", "-m", os.path.join(
            os.environ.get("STRATA_MODELS_DIR", os.path.join(HERE, "..", "..", "models")), "stories260K.gguf"),
            "--port", "0", "--chat-template", bad], capture_output=True, text=True, timeout=60)
    finally:
        os.unlink(bad)
    check(result.returncode == 1 and "include" in result.stderr,
          "an unsupported template: exit %d, %r" % (result.returncode, result.stderr[-300:]))


def stop_checks(client, model):
    prompt = PROMPTS[0]
    full, _ = run_reference(prompt, 60)
    # a stop string that spans several tokens, in the middle of the text
    stop = full[20:27]
    expected = full[:full.index(stop)]
    for stream in (False, True):
        kwargs = dict(model=model, prompt=prompt, max_tokens=60, temperature=0, stop=["zzzz-never", stop])
        if stream:
            chunks = list(client.completions.create(stream=True, **kwargs))
            text = "".join(c.choices[0].text for c in chunks)
            finish_reason = chunks[-1].choices[0].finish_reason
        else:
            reply = client.completions.create(**kwargs)
            text, finish_reason = reply.choices[0].text, reply.choices[0].finish_reason
        check(text == expected and finish_reason == "stop",
              "stop %r (stream %s): got %r finish %r, expected %r" % (stop, stream, text, finish_reason, expected))
    # a single string, at the very start of the text
    first = full[:3]
    reply = client.completions.create(model=model, prompt=prompt, max_tokens=60, temperature=0, stop=first)
    check(reply.choices[0].text == "" and reply.choices[0].finish_reason == "stop",
          "stop at the start: %r" % reply.choices[0].text)


def seed_checks(client, model):
    def sample(seed):
        return client.completions.create(model=model, prompt=PROMPTS[1], max_tokens=40, temperature=1.0, top_p=1.0,
                                         seed=seed, extra_body={"top_k": 0}).choices[0].text
    first, again = sample(1234), sample(1234)
    check(first == again, "seed 1234 twice: %r and %r" % (first, again))
    others = {sample(seed) for seed in (1, 2, 3, 4)}
    check(len(others | {first}) > 1, "five seeds gave the same text %r" % first)
    reference, _ = run_reference(PROMPTS[1], 40, "--temp", "1", "--top-k", "0", "--top-p", "1", "--seed", "1234")
    check(first == reference, "seed 1234 at temperature 1: %r, strata run --seed 1234 gives %r" % (first, reference))


def error_checks(client, model):
    try:
        client.completions.create(model=model, prompt="x", n=2)
        check(False, "n = 2 was accepted")
    except openai.BadRequestError as error:
        check(error.status_code == 400 and "'n'" in str(error), "n = 2: %s" % error)
    try:
        client.completions.create(model=model, prompt="word " * 3000, max_tokens=1)
        check(False, "a prompt longer than the context was accepted")
    except openai.BadRequestError as error:
        check("tokens but the context holds 2048 positions" in str(error), "long prompt: %s" % error)


def key_checks():
    env = dict(os.environ, STRATA_API_KEY="sesame-123")
    server = Server(env=env)
    try:
        good = openai.OpenAI(base_url=server.base_url + "/v1", api_key="sesame-123", max_retries=0)
        check(good.models.list().data[0].id == "stories260K", "the right key lists the model")
        bad = openai.OpenAI(base_url=server.base_url + "/v1", api_key="sesame-124", max_retries=0)
        try:
            bad.completions.create(model="stories260K", prompt="x", max_tokens=1)
            check(False, "a wrong key was accepted")
        except openai.AuthenticationError as error:
            check(error.status_code == 401, "wrong key: %s" % error)
        status, _, _ = server.request("GET", "/health")
        check(status == 200, "/health without a key: %d" % status)
        status, _, _ = server.request("GET", "/metrics")
        check(status == 401, "/metrics without a key: %d" % status)
        status, _, _ = server.request("GET", "/v1/models", headers={"Authorization": "Bearer sesame-12"})
        check(status == 401, "a key that is a prefix of the right one: %d" % status)
    finally:
        check(server.stop() == 0, "the keyed server did not exit 0")


def main():
    server = Server("--alias", "stories260K")
    try:
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0)
        models = client.models.list().data
        check(len(models) == 1 and models[0].id == "stories260K" and models[0].object == "model",
              "models list: %r" % models)
        completion_checks(client, "stories260K")
        chat_checks(client, "stories260K")
        stop_checks(client, "stories260K")
        seed_checks(client, "stories260K")
        error_checks(client, "stories260K")
    finally:
        status = server.stop()
        check(status == 0, "strata serve exited with %r after SIGTERM" % status)
    key_checks()
    template_checks()
    finish("serve openai client")


main()
