#!/usr/bin/env python3
"""The `llm` service for hero_logic: an adapter to an OpenAI-compatible chat endpoint.

    python3 examples/services/llm_openai.py --port 8766 \
        --url https://api.openai.com/v1 --model gpt-4o-mini     # key in LLM_API_KEY

It answers the `llm` contract that the built-in flow `service_code_gen` uses:

    complete(prompt, system?, max_tokens?, temperature?) -> {"text", "model", "usage"}

by sending one chat completion request (`POST {url}/chat/completions`, with
`Authorization: Bearer KEY` when a key is set). A failure upstream is a
JSON-RPC error: -32001 when the endpoint cannot be reached, -32002 when it
answers an HTTP error (its status and the start of its body in `data`),
-32003 when its answer has no message. Standard library only (with
`jsonrpc_server.py` beside it).
"""

import json
import os
import sys
import urllib.error
import urllib.request

from jsonrpc_server import RpcError, arguments, serve

DOCUMENT = {
    "openrpc": "1.2.6",
    "info": {"title": "llm", "version": "1.0.0", "description": "Text completion through an OpenAI-compatible chat endpoint."},
    "methods": [
        {
            "name": "complete",
            "summary": "Complete a prompt: one chat turn, the answer's text.",
            "paramStructure": "by-name",
            "params": [
                {"name": "prompt", "required": True, "description": "The user message.", "schema": {"type": "string"}},
                {"name": "system", "required": False, "description": "A system message before it.", "schema": {"type": "string"}},
                {"name": "max_tokens", "required": False, "schema": {"type": "integer", "minimum": 1}},
                {"name": "temperature", "required": False, "schema": {"type": "number", "minimum": 0, "maximum": 2}},
            ],
            "result": {"name": "completion", "schema": {"type": "object", "properties": {"text": {"type": "string"}, "model": {"type": "string"}, "usage": {"type": "object"}}}},
        }
    ],
}


class Upstream:
    def __init__(self, url, key, model, timeout):
        self.url = url.rstrip("/") + "/chat/completions"
        self.key, self.model, self.timeout = key, model, timeout

    def complete(self, prompt, system=None, max_tokens=None, temperature=None):
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        body = {"model": self.model, "messages": messages}
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        if temperature is not None:
            body["temperature"] = temperature
        headers = {"Content-Type": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        request = urllib.request.Request(self.url, data=json.dumps(body).encode(), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise RpcError(-32002, f"the endpoint answered HTTP {error.code}", {"status": error.code, "body": error.read()[:500].decode(errors="replace")})
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            raise RpcError(-32001, f"cannot reach {self.url}: {error}")
        try:
            text = answer["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise RpcError(-32003, "the endpoint's answer has no message", {"answer": str(answer)[:500]})
        return {"text": text, "model": answer.get("model", self.model), "usage": answer.get("usage", {})}


def main():
    parser = arguments(__doc__.splitlines()[0], default_port=8766)
    parser.add_argument("--url", default=os.environ.get("LLM_URL", "https://api.openai.com/v1"), help="the endpoint's base URL (or LLM_URL)")
    parser.add_argument("--model", default=os.environ.get("LLM_MODEL", "gpt-4o-mini"), help="the model to ask (or LLM_MODEL)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for an answer")
    args = parser.parse_args()
    # The key comes from the environment only, so it never shows in a process list.
    upstream = Upstream(args.url, os.environ.get("LLM_API_KEY"), args.model, args.timeout)
    return serve({"complete": upstream.complete}, DOCUMENT, args)


if __name__ == "__main__":
    sys.exit(main())
