#!/usr/bin/env python3
"""Writes the chat template fixtures of tests/data/templates/ with Python's
jinja2, rendering the way Hugging Face's apply_chat_template does
(transformers.utils.chat_template_utils): an ImmutableSandboxedEnvironment
with trim_blocks and lstrip_blocks and the loop controls, raise_exception,
strftime_now (here at a fixed date), tojson as json.dumps with
ensure_ascii=False, and the variables messages, tools (None when not
given), documents, add_generation_prompt, bos_token, eos_token and any
further keyword arguments.

usage: gen_template_fixtures.py TEMPLATES_DIR OUT_DIR
  TEMPLATES_DIR  the real templates (*.jinja), copied into OUT_DIR
  OUT_DIR        tests/data/templates

Writes OUT_DIR/cases.json (every template over a set of conversations:
expected text, or the error jinja2 raised), OUT_DIR/constructs.json (small
templates for each construct the interpreter supports) and OUT_DIR/cli/
(inputs and outputs for the command-line test). CI reads these files; it
needs no Python. Needs jinja2 (pip install jinja2).
"""

import datetime
import json
import os
import shutil
import sys

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

DATE = datetime.datetime(2025, 3, 7)


class GenerationTracker(Extension):
    """Hugging Face's {% generation %} block: renders its body unchanged."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_generation", []), [], [], body).set_lineno(lineno)

    def _generation(self, caller):
        return caller()


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(fmt):
    return DATE.strftime(fmt)


def environment():
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[GenerationTracker, loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def render(env, source, variables):
    """(text, None) or (None, (kind, message))."""
    try:
        template = env.from_string(source)
        return template.render(**variables), None
    except jinja2.exceptions.TemplateSyntaxError as e:
        return None, ("syntax", str(e))
    except jinja2.exceptions.UndefinedError as e:
        return None, ("undefined", str(e))
    except jinja2.exceptions.TemplateError as e:
        # raise_exception raises TemplateError itself
        kind = "raise_exception" if type(e) is jinja2.exceptions.TemplateError else "template"
        return None, (kind, str(e))
    except Exception as e:  # TypeError, ValueError, ... from Python operations
        return None, (type(e).__name__, str(e))


# --- conversations --------------------------------------------------------------------

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather in a location",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {"type": "string", "description": "City name, e.g. Paris"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "Temperature unit"},
                },
                "required": ["location"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "search",
            "description": "Search the web",
            "parameters": {
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "What to look for"},
                    "max_results": {"type": "integer", "description": "How many results", "default": 5},
                    "tags": {"type": "array", "items": {"type": "string"}, "description": "Filter tags"},
                    "threshold": {"type": "number", "description": "Minimum score", "nullable": True},
                },
                "required": ["query"],
            },
        },
    },
]

CALL_WEATHER = {
    "id": "call12345",
    "type": "function",
    "function": {"name": "get_weather", "arguments": {"location": "Paris", "unit": "celsius"}},
}
CALL_SEARCH = {
    "id": "call67890",
    "type": "function",
    "function": {"name": "search", "arguments": {"query": "strata inference", "max_results": 3, "threshold": 0.5}},
}

CONVERSATIONS = {
    "user_only": {"messages": [{"role": "user", "content": "Hello!"}]},
    "system_user": {
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is 2+2?"},
        ]
    },
    "multi_turn": {
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hi there"},
            {"role": "assistant", "content": "Hello. How can I help?"},
            {"role": "user", "content": "Tell me a joke."},
        ]
    },
    "multi_turn_no_system": {
        "messages": [
            {"role": "user", "content": "  What is the capital of France?  "},
            {"role": "assistant", "content": "Paris."},
            {"role": "user", "content": "And of Italy?"},
        ]
    },
    "assistant_last": {
        "messages": [
            {"role": "user", "content": "Count to three."},
            {"role": "assistant", "content": "One, two, three."},
        ]
    },
    "unicode": {
        "messages": [
            {"role": "system", "content": "Réponds en français. 日本語も OK."},
            {
                "role": "user",
                "content": "Héllo wörld — 你好 🌍 \"quotes\" and 'apostrophes' \\ backslash\n  new line\ttab",
            },
            {"role": "assistant", "content": "Voilà: ça marche ✓"},
            {"role": "user", "content": "Ευχαριστώ! Спасибо!"},
        ]
    },
    "thinking": {
        "messages": [
            {"role": "user", "content": "Is 17 prime?"},
            {"role": "assistant", "content": "<think>\nCheck divisors up to 4.\n</think>\n\nYes, 17 is prime."},
            {"role": "user", "content": "And 21?"},
        ]
    },
    "tool_calls": {
        "tools": TOOLS,
        "messages": [
            {"role": "system", "content": "You can call tools."},
            {"role": "user", "content": "What's the weather in Paris?"},
            {"role": "assistant", "content": "", "tool_calls": [CALL_WEATHER]},
            {"role": "tool", "tool_call_id": "call12345", "name": "get_weather",
             "content": "{\"temperature\": 22.5, \"unit\": \"celsius\"}"},
            {"role": "assistant", "content": "It is 22.5 °C in Paris."},
            {"role": "user", "content": "Thanks!"},
        ],
    },
    "tool_calls_pending": {
        "tools": TOOLS,
        "messages": [
            {"role": "user", "content": "Search for strata and check the weather in Paris."},
            {"role": "assistant", "content": "", "tool_calls": [CALL_SEARCH, CALL_WEATHER]},
            {"role": "tool", "tool_call_id": "call67890", "name": "search", "content": "3 results"},
            {"role": "tool", "tool_call_id": "call12345", "name": "get_weather",
             "content": {"temperature": 22, "sky": "clear"}},
        ],
    },
    "tool_calls_string_arguments": {
        "tools": TOOLS,
        "messages": [
            {"role": "user", "content": "Weather in Oslo?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call24680",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": "{\"location\": \"Oslo\"}"},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call24680", "content": "cold"},
        ],
    },
    "tools_no_calls": {
        "tools": TOOLS,
        "messages": [
            {"role": "system", "content": "Use tools when needed."},
            {"role": "user", "content": "Hi"},
        ],
    },
    "content_parts": {
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Describe this:"}, {"type": "image"}]},
        ]
    },
    "bad_role_order": {
        "messages": [
            {"role": "user", "content": "First"},
            {"role": "user", "content": "Second"},
        ]
    },
    "assistant_first": {
        "messages": [
            {"role": "assistant", "content": "I speak first."},
            {"role": "user", "content": "OK"},
        ]
    },
    "empty": {"messages": []},
}

# (bos, eos) by template family; None: the tokenizer has none (not passed)
TOKENS = {
    "CohereForAI": ("<BOS_TOKEN>", "<|END_OF_TURN_TOKEN|>"),
    "HuggingFaceTB": (None, "<|im_end|>"),
    "LFM2.5": ("<|startoftext|>", "<|im_end|>"),
    "Mistral-Small": ("<s>", "</s>"),
    "NousResearch": ("<|begin_of_text|>", "<|im_end|>"),
    "Qwen": (None, "<|im_end|>"),
    "deepseek": ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    "fireworks": ("<|begin_of_text|>", "<|eot_id|>"),
    "google": ("<bos>", "<eos>"),
    "ibm": (None, "<|end_of_text|>"),
    "meta": ("<|begin_of_text|>", "<|eot_id|>"),
    "microsoft": ("<s>", "<|endoftext|>"),
    "mistralai": ("<s>", "</s>"),
    "openai": ("<|startoftext|>", "<|return|>"),
}

# Further variables a template reads, each tried on a few conversations.
VARIANTS = {
    "Qwen-Qwen3": [{"enable_thinking": False}],
    "Qwen-QwQ": [{"enable_thinking": False}],
    "HuggingFaceTB": [{"enable_thinking": False}],
    "deepseek-ai-DeepSeek-R1-Distill-Qwen": [{"enable_thinking": False}],
    "deepseek-ai-DeepSeek-V3.1": [{"thinking": True}, {"enable_thinking": True}],
    "openai": [
        {"reasoning_effort": "high", "model_identity": "You are a test model."},
        {"builtin_tools": ["browser", "python"]},
    ],
    "meta-llama-Llama-3.1": [
        {"builtin_tools": ["brave_search", "wolfram_alpha", "code_interpreter"]},
        {"tools_in_user_message": False},
        {"date_string": "01 Jan 2025"},
    ],
    "meta-llama-Llama-3.3": [{"tools_in_user_message": False}],
    "meta-llama-Llama-3.2": [{"tools_in_user_message": False}],
    "fireworks": [{"functions": json.dumps(TOOLS), "datetime": "2025-03-07"}],
    "ibm": [
        {"documents": [{"doc_id": 1, "text": "Paris is in France."}, {"doc_id": "b", "text": "Rome is in Italy."}],
         "controls": {"citations": True, "hallucinations": True}},
        {"thinking": True},
    ],
    "LFM2.5": [{"keep_past_thinking": True}],
}
VARIANT_CONVERSATIONS = ["multi_turn", "tool_calls", "thinking"]
NO_GENERATION_PROMPT = ["multi_turn", "tool_calls", "assistant_last"]

# Old-style Cohere tools (parameter_definitions) for one more case.
COHERE_OLD_TOOLS = [
    {
        "name": "internet_search",
        "description": "Returns a list of relevant document snippets for a textual query",
        "parameter_definitions": {
            "query": {"description": "Query to search the internet with", "type": "str", "required": True},
            "limit": {"description": "How many", "type": "int", "required": False},
        },
    }
]


def family(template_name, table):
    for prefix, value in table.items():
        if template_name.startswith(prefix):
            return value
    return None


def case_variables(conversation, add_generation_prompt, tokens, extra):
    variables = {
        "messages": conversation["messages"],
        "tools": conversation.get("tools"),
        "documents": None,
        "add_generation_prompt": add_generation_prompt,
    }
    bos, eos = tokens
    if bos is not None:
        variables["bos_token"] = bos
    if eos is not None:
        variables["eos_token"] = eos
    variables.update(extra)
    return variables


def make_cases(env, templates_dir, out_dir):
    names = sorted(n for n in os.listdir(templates_dir) if n.endswith(".jinja"))
    cases = []
    for name in names:
        shutil.copyfile(os.path.join(templates_dir, name), os.path.join(out_dir, name))
        with open(os.path.join(templates_dir, name), encoding="utf-8") as f:
            source = f.read()
        tokens = family(name, TOKENS) or ("<s>", "</s>")
        plan = [(c, True, {}) for c in CONVERSATIONS]
        plan += [(c, False, {}) for c in NO_GENERATION_PROMPT]
        for extra in family(name, VARIANTS) or []:
            plan += [(c, True, extra) for c in VARIANT_CONVERSATIONS]
        for conversation_name, agp, extra in plan:
            conversation = CONVERSATIONS[conversation_name]
            variables = case_variables(conversation, agp, tokens, extra)
            text, error = render(env, source, variables)
            case = {"template": name, "conversation": conversation_name, "add_generation_prompt": agp}
            if tokens[0] is not None:
                case["bos_token"] = tokens[0]
            if tokens[1] is not None:
                case["eos_token"] = tokens[1]
            if extra:
                case["variables"] = extra
            if error:
                case["error_kind"], case["error"] = error
            else:
                case["expected"] = text
            cases.append(case)
        if name.startswith("CohereForAI"):
            conversation = {"messages": CONVERSATIONS["multi_turn"]["messages"], "tools": COHERE_OLD_TOOLS}
            text, error = render(env, source, case_variables(conversation, True, tokens, {}))
            case = {"template": name, "conversation": "cohere_old_tools", "add_generation_prompt": True,
                    "bos_token": tokens[0], "eos_token": tokens[1]}
            if error:
                case["error_kind"], case["error"] = error
            else:
                case["expected"] = text
            cases.append(case)
    conversations = dict(CONVERSATIONS)
    conversations["cohere_old_tools"] = {"messages": CONVERSATIONS["multi_turn"]["messages"],
                                         "tools": COHERE_OLD_TOOLS}
    return {"date": DATE.strftime("%Y-%m-%d"), "conversations": conversations, "cases": cases}


# --- constructs: small templates, one feature each ------------------------------------

CONSTRUCTS = [
    # whitespace control
    ("ws_trim_blocks", "{% if true %}\nyes\n{% endif %}\nafter", {}),
    ("ws_lstrip_blocks", "  {% if true %}\n  x\n  {% endif %}\n  {{ 'y' }}\n", {}),
    ("ws_minus", "a  {%- if true -%}  b  {%- endif -%}  c", {}),
    ("ws_plus", "a\n  {%+ if true +%}\nb\n  {%+ endif %}\nc", {}),
    ("ws_var_minus", "x {{- 'y' -}} z\n{{ 'w' }} ", {}),
    ("ws_comment", "a\n  {# c #}\nb {#- d -#} e", {}),
    ("ws_raw", "{% raw %}{{ not a var }}{% endraw %}\n{%- raw -%} {% x %} {%- endraw %}", {}),
    ("ws_crlf", "a\r\n{% if true %}\r\nb\r\n{% endif %}\r\n", {}),
    ("ws_trailing_newline", "x\n", {}),
    ("ws_tag_after_var", "{{ 'a' }}  {% if true %}b{% endif %}", {}),
    # expressions
    ("expr_arith", "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} "
     "{{ 2 ** 10 }} {{ 10 / 4 }} {{ 1 - -1 }} {{ 3 * 1.5 }}", {}),
    ("expr_floats", "{{ 0.1 + 0.2 }} {{ 1e16 }} {{ 1.5e-5 }} {{ 2.0 }} {{ 1/3 }} {{ 100.0 * 3 }} {{ -0.0 }}", {}),
    ("expr_compare", "{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ 1 == 1.0 }} "
     "{{ true == 1 }} {{ none == none }} {{ 'a' != 'a' }}", {}),
    ("expr_logic", "{{ 0 or 'x' }} {{ 1 and 'y' }} {{ not 0 }} {{ [] or {} or 'z' }} {{ none and 1 }}", {}),
    ("expr_in", "{{ 'b' in 'abc' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 'z' not in 'abc' }} "
     "{{ 'x' in missing }}", {}),
    ("expr_concat", "{{ 'a' ~ 1 ~ none ~ true ~ missing ~ [1] }}", {}),
    ("expr_condexpr", "{{ 'y' if 1 else 'n' }} {{ 'y' if 0 else 'n' }} [{{ 'y' if 0 }}] "
     "{{ 'a' if false else 'b' if true else 'c' }}", {}),
    ("expr_literals", "{{ [1, 'two', 3.0, none, true, [], {}] }} {{ {'a': 1, 'b': [2]} }} {{ (1,) }} {{ (1, 2) }} "
     "{{ () }} {{ 'it''s' }} {{ \"say \\\"hi\\\"\" }} {{ 'tab\\there' }} {{ '\\u00e9\\x41\\n' }}", {}),
    ("expr_str_repr", "{{ ['it\\'s', \"q\\\"d\", 'both\\'\"', 'nl\\n', 'é', '\\x01', '\\\\'] }}", {}),
    ("expr_subscript", "{{ x[0] }} {{ x[-1] }} {{ x[1:] }} {{ x[:-1] }} {{ x[::-1] }} {{ x[::2] }} {{ x[5] }}|"
     "{{ s[1:3] }} {{ s[-2:] }} {{ s[::-1] }} {{ d['k'] }} {{ d.k }} {{ d['missing'] }}|{{ x.0 }}",
     {"x": [1, 2, 3, 4], "s": "héllo", "d": {"k": "v"}}),
    ("expr_attr_method_first", "{{ d.items is defined }} {{ d['items'] }} {{ d.get('items') }} {{ d.values()|list }}",
     {"d": {"items": 5}}),
    ("expr_none_attr", "[{{ none.x }}] [{{ 'str'.nope }}] [{{ 5.real }}]", {}),
    ("expr_unary_filter", "{{ -3|abs }} {{ not true|string }} {{ -(2) }}", {}),
    ("expr_print_values", "{{ none }} {{ true }} {{ false }} {{ 3 }} {{ 3.0 }} [{{ missing }}] {{ 'x' }}", {}),
    # statements
    ("stmt_if_elif", "{% for n in [1, 2, 3, 4] %}{% if n == 1 %}one{% elif n == 2 %}two{% elif n == 3 %}three"
     "{% else %}many{% endif %} {% endfor %}", {}),
    ("stmt_for_loop_vars", "{% for x in 'abc' %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}"
     "{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}[{{ loop.previtem }}|{{ loop.nextitem }}] "
     "{% endfor %}", {}),
    ("stmt_for_else", "{% for x in [] %}{{ x }}{% else %}empty{% endfor %} {% for x in missing %}{{ x }}"
     "{% else %}none{% endfor %}", {}),
    ("stmt_for_filter", "{% for x in range(10) if x is odd %}{{ x }}{{ ',' if not loop.last }}{% endfor %}", {}),
    ("stmt_for_unpack", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %} {% for a, b in [[1, 2], (3, 4)] %}"
     "{{ a + b }}{% endfor %}", {"d": {"x": 1, "y": [2]}}),
    ("stmt_for_dict", "{% for k in d %}{{ k }}{% endfor %}", {"d": {"b": 1, "a": 2}}),
    ("stmt_for_nested", "{% for i in [1, 2] %}{% for j in 'ab' %}{{ loop.index }}{{ i }}{{ j }} {% endfor %}"
     "{{ loop.index }}|{% endfor %}", {}),
    ("stmt_break_continue", "{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}"
     "{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %}", {}),
    ("stmt_loop_cycle", "{% for i in range(5) %}{{ loop.cycle('a', 'b', 'c') }}{% endfor %}", {}),
    ("stmt_scope_for", "{% set x = 1 %}{% for i in [1, 2] %}{% set x = x + i %}{{ x }}{% endfor %}{{ x }}", {}),
    ("stmt_scope_if", "{% if true %}{% set y = 5 %}{% endif %}{{ y }}", {}),
    ("stmt_scope_iteration", "{% for i in [1, 2] %}{% if i == 1 %}{% set z = 5 %}{% endif %}[{{ z }}]{% endfor %}",
     {}),
    ("stmt_namespace", "{% set ns = namespace(count=0, found=false) %}{% for i in range(4) %}"
     "{% set ns.count = ns.count + i %}{% if i == 2 %}{% set ns.found = true %}{% endif %}{% endfor %}"
     "{{ ns.count }} {{ ns.found }} {{ ns.missing is defined }}", {}),
    ("stmt_namespace_print", "{{ namespace(a=1, b='x') }}", {}),
    ("stmt_set_tuple", "{% set a, b = [1, 2] %}{% set c = 3, 4 %}{{ a }}{{ b }}{{ c }}", {}),
    ("stmt_set_block", "{% set text %}\n  Hello {{ name }}\n{% endset %}[{{ text }}]{% set t2 | upper %}abc"
     "{% endset %}{{ t2 }}", {"name": "Bob"}),
    ("stmt_filter_block", "{% filter upper %}shout {{ 'this' }}{% endfilter %} {% filter trim|title %}  two words  "
     "{% endfilter %}", {}),
    ("stmt_with", "{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}[{{ a }}]", {}),
    ("stmt_macro", "{% macro greet(name, greeting='Hello', punct='!') %}{{ greeting }}, {{ name }}{{ punct }}"
     "{% endmacro %}{{ greet('Ann') }} {{ greet('Bob', 'Hi') }} {{ greet(name='Cy', punct='?') }} "
     "{{ greet('Di', punct='.') }}", {}),
    ("stmt_macro_recursive", "{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1)|int }}{% endif %}"
     "{% endmacro %}{{ fact(6) }}", {}),
    ("stmt_macro_globals", "{% macro m() %}{{ later }}-{{ given }}{% endmacro %}{% set later = 'L' %}{{ m() }}",
     {"given": "G"}),
    ("stmt_macro_varargs", "{% macro m(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, 3, k=4) }}", {}),
    ("stmt_macro_default_reads_param", "{% macro m(a, b=a * 2) %}{{ a }},{{ b }}{% endmacro %}{{ m(3) }}", {}),
    ("stmt_macro_missing_arg", "{% macro m(a, b) %}[{{ a }}|{{ b }}|{{ b is defined }}]{% endmacro %}{{ m(1) }}",
     {}),
    ("stmt_generation", "{% generation %}gen {{ 1 }}{% endgeneration %}", {}),
    # filters
    ("filter_text", "{{ 'AbC'|lower }} {{ 'abc'|upper }} {{ 'hello world'|capitalize }} "
     "{{ 'hello big-world (x)'|title }} {{ '  t  '|trim }}| {{ 'xxhixx'|trim('x') }} {{ 'aXbX'|replace('X', '-') }} "
     "{{ 'aaa'|replace('a', 'b', 2) }} {{ 'a b  c'|wordcount }} {{ 'x'|center(5) }}|", {}),
    ("filter_default", "{{ missing|default('d') }} {{ ''|default('e', true) }} {{ none|default('f') }} "
     "{{ 0|d('g', boolean=true) }} {{ 'v'|default('h') }}", {}),
    ("filter_length", "{{ 'héllo'|length }} {{ [1, 2]|count }} {{ {'a': 1}|length }} {{ missing|length }}", {}),
    ("filter_first_last", "{{ [3, 4]|first }} {{ [3, 4]|last }} {{ 'xyz'|first }} [{{ []|first }}]", {}),
    ("filter_join", "{{ [1, 'a', none]|join(', ') }} {{ ['x', 'y']|join }} {{ users|join('/', attribute='name') }}",
     {"users": [{"name": "a"}, {"name": "b"}]}),
    ("filter_list_reverse", "{{ 'abc'|list }} {{ 'abc'|reverse }} {{ [1, 2, 3]|reverse|list }} "
     "{{ {'a': 1}|list }}", {}),
    ("filter_sort", "{{ [3, 1, 2]|sort }} {{ ['b', 'A', 'c']|sort }} {{ ['b', 'A', 'c']|sort(case_sensitive=true) }} "
     "{{ [3, 1, 2]|sort(reverse=true) }} {{ users|sort(attribute='age')|map(attribute='name')|list }}",
     {"users": [{"name": "x", "age": 30}, {"name": "y", "age": 20}, {"name": "z", "age": 30}]}),
    ("filter_dictsort", "{{ d|dictsort }} {{ d|dictsort(by='value') }} {{ d|dictsort(reverse=true) }}",
     {"d": {"b": 1, "a": 3, "C": 2}}),
    ("filter_unique_min_max", "{{ [1, 2, 1, 3, 2]|unique|list }} {{ ['a', 'A', 'b']|unique|list }} "
     "{{ [4, 2, 8]|min }} {{ [4, 2, 8]|max }} {{ ['b', 'A']|min }} {{ users|max(attribute='age') }}",
     {"users": [{"name": "x", "age": 30}, {"name": "y", "age": 40}]}),
    ("filter_sum", "{{ [1, 2, 3]|sum }} {{ [1.5, 2]|sum }} {{ users|sum(attribute='age') }} {{ [1]|sum(start=10) }}",
     {"users": [{"age": 30}, {"age": 40}]}),
    ("filter_numbers", "{{ '42'|int }} {{ ' 7 '|int }} {{ '3.9'|int }} {{ 'x'|int }} {{ 'x'|int(5) }} {{ 3.99|int }} "
     "{{ '1.5'|float }} {{ 'x'|float }} {{ 2|float }} {{ -3|abs }} {{ 2.5|round }} {{ 3.5|round }} "
     "{{ 2.675|round(2) }} {{ 1.2345|round(2, 'floor') }} {{ 1.2345|round(1, 'ceil') }} {{ true|int }}", {}),
    ("filter_map_select", "{{ ['a', 'b']|map('upper')|list }} {{ users|map(attribute='name')|list }} "
     "{{ users|map(attribute='nick', default='?')|list }} {{ [1, 2, 3, 4]|select('odd')|list }} "
     "{{ [1, 2, 3, 4]|reject('odd')|list }} {{ [0, 1, none, 'x']|select|list }} "
     "{{ users|selectattr('admin')|map(attribute='name')|list }} "
     "{{ users|rejectattr('admin')|map(attribute='name')|list }} "
     "{{ users|selectattr('name', 'equalto', 'b')|list }} {{ ['a', 'b']|select('in', ['b'])|list }}",
     {"users": [{"name": "a", "admin": True}, {"name": "b", "admin": False}]}),
    ("filter_items", "{% for k, v in d|items %}{{ k }}:{{ v }} {% endfor %}{{ missing|items|list }}",
     {"d": {"one": 1, "two": 2}}),
    ("filter_string_repr", "{{ d|string }} {{ [1, 'x']|string }} {{ none|string }} {{ 1.0|string }}",
     {"d": {"k": "v", "n": None, "t": True, "f": 1.5, "l": [1, "a"]}}),
    ("filter_tojson", "{{ d|tojson }} {{ 'é\"\\n'|tojson }} {{ [1, 2.5, none, true]|tojson }} {{ {}|tojson }} "
     "{{ []|tojson }} {{ 'x'|tojson(ensure_ascii=true) }} {{ d|tojson(sort_keys=true) }} {{ 1e100|tojson }}",
     {"d": {"b": [1, {"c": "ü"}], "a": None}}),
    ("filter_tojson_indent", "{{ d|tojson(indent=2) }}\n{{ d|tojson(indent=4)|indent(4) }}\n"
     "{{ [[], {}, [1]]|tojson(indent=1) }}", {"d": {"b": [1, {"c": "ü"}], "a": {}, "e": []}}),
    ("filter_tojson_separators", "{{ d|tojson(separators=(',', ':')) }}", {"d": {"a": [1, 2], "b": "c"}}),
    ("filter_indent", "{{ 'l1\\nl2\\n\\nl3'|indent(2) }}|{{ 'l1\\nl2'|indent(2, first=true) }}|"
     "{{ 'l1\\nl2\\n'|indent(2, blank=true) }}|{{ 'a\\nb'|indent('> ') }}|{{ 'a\\r\\nb'|indent }}", {}),
    ("filter_escape_safe", "{{ '<a href=\"x\">&\\'</a>'|e }} {{ '<b>'|safe }} {{ 3|string|escape }}", {}),
    ("filter_attr", "{{ d|attr('k') }} [{{ d|attr('missing') }}]", {"d": {"k": "v"}}),
    # tests
    ("tests_types", "{{ 'a' is string }}{{ 1 is number }}{{ 1.5 is number }}{{ true is number }}{{ 1 is integer }}"
     "{{ true is integer }}{{ 1.0 is float }}{{ none is none }}{{ {} is mapping }}{{ [] is mapping }}"
     "{{ 'a' is iterable }}{{ 1 is iterable }}{{ missing is iterable }}{{ [] is sequence }}{{ true is boolean }}"
     "{{ false is false }}{{ 0 is false }}{{ true is true }}{{ missing is undefined }}{{ x is defined }}", {"x": 0}),
    ("tests_values", "{{ 3 is odd }}{{ 4 is even }}{{ 9 is divisibleby 3 }}{{ 9 is divisibleby(4) }}"
     "{{ 'a' is equalto 'a' }}{{ 1 is eq 2 }}{{ 1 is ne 2 }}{{ 1 is lt 2 }}{{ 2 is le 2 }}{{ 3 is gt 2 }}"
     "{{ 2 is ge 3 }}{{ 'b' is in 'abc' }}{{ 'abc' is lower }}{{ 'ABC' is upper }}{{ 'Ab' is upper }}"
     "{{ 'upper' is filter }}{{ 'odd' is test }}{{ none is sameas none }}{{ m is callable }}{{ 1 is callable }}",
     {}),
    ("tests_not", "{{ 1 is not string }} {{ not 1 is string }} {{ x is not none and x is not string }}", {"x": 3}),
    # methods
    ("methods_str", "{{ ' a b '.strip() }}|{{ 'xxhixx'.lstrip('x') }}|{{ 'xxhixx'.rstrip('x') }}|"
     "{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'a b c'.split(' ', 1) }}|{{ 'a b c'.rsplit(' ', 1) }}|"
     "{{ 'x\\ny\\r\\nz'.splitlines() }}|{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x', 'c')) }}|"
     "{{ 'aXbX'.replace('X', 'y') }}|{{ 'héllo'.find('l') }}|{{ 'hello'.rfind('l') }}|{{ 'banana'.count('an') }}|"
     "{{ '-'.join(['a', 'b']) }}|{{ 'hello world'.title() }}|{{ 'they\\'re'.title() }}|{{ 'Ab'.upper() }}"
     "{{ 'Ab'.lower() }}{{ 'ab'.capitalize() }}|{{ '42'.isdigit() }}{{ 'ab'.isalpha() }}{{ ' '.isspace() }}|"
     "{{ 'prefix_x'.removeprefix('prefix_') }}|{{ 'a=b=c'.partition('=') }}|{{ 'a=b=c'.rpartition('=') }}|"
     "{{ '7'.zfill(3) }}|{{ 'x'.ljust(3, '.') }}|{{ 'x'.rjust(3) }}|{{ 'x'.center(4, '*') }}", {}),
    ("methods_format", "{{ '{} and {}'.format('a', 1) }} {{ '{0}{0}{1}'.format('x', 'y') }} "
     "{{ '{name}!'.format(name='hi') }} {{ '{{literal}}'.format() }} {{ '{!r}'.format('q') }}", {}),
    ("methods_dict_list", "{{ d.get('a') }} {{ d.get('z') }} {{ d.get('z', 0) }} {{ d.keys()|list }} "
     "{{ d.values()|list }} {{ d.items()|list }} {{ [1, 2, 1].count(1) }} {{ [5, 6].index(6) }}",
     {"d": {"a": 1, "b": 2}}),
    ("globals_range_dict", "{{ range(3)|list }} {{ range(1, 10, 3)|list }} {{ range(5, 0, -2)|list }} "
     "{{ dict(a=1, b='x') }} {{ range(0)|list }}", {}),
    ("strftime", "{{ strftime_now('%Y-%m-%d') }} {{ strftime_now('%B %d, %Y') }} {{ strftime_now('%d %b %Y') }} "
     "{{ strftime_now('%A %a %j %H:%M:%S %y %m') }} {{ strftime_now('%-d/%-m') }}", {}),
    # errors jinja2 raises
    ("error_raise", "{% if true %}{{ raise_exception('custom failure: ' ~ 42) }}{% endif %}", {}),
    ("error_undefined_attr", "{{ missing.attr }}", {}),
    ("error_undefined_call", "{{ nofunc(1) }}", {}),
    ("error_str_plus_int", "{{ 'a' + 1 }}", {}),
    ("error_undefined_plus", "{{ missing + 'a' }}", {}),
    ("error_compare_types", "{{ 1 < 'a' }}", {}),
    ("error_division", "{{ 1 / 0 }}", {}),
    ("error_unknown_filter", "{{ 1|nosuchfilter }}", {}),
    ("error_syntax", "{% if %}", {}),
    ("error_unclosed", "{% for x in y %}", {}),
    ("error_namespace_assign", "{% set d = {} %}{% set d.x = 1 %}", {}),
    ("error_immutable", "{% set l = [1] %}{{ l.append(2) }}", {}),
    ("error_range", "{{ range(1000000)|length }}", {}),
    ("error_tojson_undefined", "{{ missing|tojson }}", {}),
    ("error_macro_args", "{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}", {}),
    ("error_unpack", "{% set a, b = [1, 2, 3] %}", {}),
    ("error_items_not_mapping", "{{ [1]|items|list }}", {}),
]


def whitespace_mixes(count=40, seed=7):
    """Random sequences of tags with every whitespace control, and text with
    newlines, spaces, tabs and Unicode spaces between them (ifs balanced)."""
    import random

    rng = random.Random(seed)
    pieces = ["{% if x %}", "{%- if x %}", "{% if x -%}", "{%+ if x %}", "{% if x +%}", "{{ 'v' }}", "{{- 'v' }}",
              "{{ 'v' -}}", "{# c #}", "{#- c #}", "{# c -#}", "{% endif %}", "{%- endif %}", "{% endif -%}",
              "{% set y = 1 %}", "{%- set y = 2 -%}", "{% raw %}r{% endraw %}", "{%- raw -%} r {%- endraw -%}",
              "\n", "\n\n", "  ", "\t", " \n ", "text", "a\n  ", "\n  b", "\u00a0", "\u3000\n"]
    out = []
    for n in range(count):
        depth, parts = 0, []
        for _ in range(rng.randint(3, 10)):
            piece = rng.choice(pieces)
            if "endif" in piece:
                if depth == 0:
                    continue
                depth -= 1
            elif "if x" in piece:
                depth += 1
            parts.append(piece)
        parts += ["{% endif %}"] * depth
        out.append((f"ws_mix_{n}", "".join(parts), {"x": n % 3 != 0}))
    return out


def make_constructs(env):
    out = []
    for name, source, variables in CONSTRUCTS + whitespace_mixes():
        text, error = render(env, source, variables)
        case = {"name": name, "template": source, "variables": variables}
        if error:
            case["error_kind"], case["error"] = error
        else:
            case["expected"] = text
        out.append(case)
    return out


# --- the command-line test's files ---------------------------------------------------

CLI_CASES = [
    # (output name, template, conversation, add_generation_prompt, variables)
    ("qwen3_tools.txt", "Qwen-Qwen3-0.6B.jinja", "tool_calls", True, {}),
    ("qwen3_no_thinking.txt", "Qwen-Qwen3-0.6B.jinja", "multi_turn", True, {"enable_thinking": False}),
    ("llama31_multi.txt", "meta-llama-Llama-3.1-8B-Instruct.jinja", "multi_turn", False, {}),
    ("gpt_oss_date.txt", "openai-gpt-oss-120b.jinja", "system_user", True, {"reasoning_effort": "low"}),
]


def make_cli(env, templates_dir, out_dir):
    cli_dir = os.path.join(out_dir, "cli")
    os.makedirs(cli_dir, exist_ok=True)
    for name in ["multi_turn", "tool_calls", "system_user", "bad_role_order"]:
        with open(os.path.join(cli_dir, name + ".json"), "w", encoding="utf-8") as f:
            json.dump(CONVERSATIONS[name]["messages"], f, ensure_ascii=False, indent=1)
            f.write("\n")
    with open(os.path.join(cli_dir, "tools.json"), "w", encoding="utf-8") as f:
        json.dump(TOOLS, f, ensure_ascii=False, indent=1)
        f.write("\n")
    for out_name, template, conversation_name, agp, extra in CLI_CASES:
        with open(os.path.join(templates_dir, template), encoding="utf-8") as f:
            source = f.read()
        tokens = family(template, TOKENS)
        variables = case_variables(CONVERSATIONS[conversation_name], agp, tokens, extra)
        text, error = render(env, source, variables)
        assert error is None, (out_name, error)
        with open(os.path.join(cli_dir, out_name), "w", encoding="utf-8", newline="") as f:
            f.write(text)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    templates_dir, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    env = environment()
    cases = make_cases(env, templates_dir, out_dir)
    with open(os.path.join(out_dir, "cases.json"), "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False, indent=1)
        f.write("\n")
    with open(os.path.join(out_dir, "constructs.json"), "w", encoding="utf-8") as f:
        json.dump({"date": DATE.strftime("%Y-%m-%d"), "cases": make_constructs(env)}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    make_cli(env, templates_dir, out_dir)
    n_errors = sum(1 for c in cases["cases"] if "error" in c)
    print(f"{len(cases['cases'])} template cases ({n_errors} expected errors), {len(CONSTRUCTS) + 40} constructs")


if __name__ == "__main__":
    main()
