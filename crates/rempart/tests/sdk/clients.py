"""Drives Rempart's gateway with the official OpenAI and Anthropic Python SDKs, unmodified.

Usage: clients.py {openai|openai-responses|anthropic} SCENARIO, with REMPART_URL, REMPART_TOKEN, REMPART_MODEL
and REMPART_PROMPT in the environment (and REMPART_CA, a PEM file, to trust a server's TLS
certificate the way an institution's own CA would be trusted). Prints one JSON object: what the
SDK returned.
"""

import json
import os
import sys

import pydantic

URL = os.environ["REMPART_URL"]
TOKEN = os.environ["REMPART_TOKEN"]
MODEL = os.environ.get("REMPART_MODEL", "rempart/triage")
PROMPT = os.environ.get("REMPART_PROMPT", "hello")
HEADERS = {}
if os.environ.get("REMPART_CLASS"):
    HEADERS["x-rempart-data-class"] = os.environ["REMPART_CLASS"]



def http_client(sdk):
    """The SDK's documented `http_client` option (its own `DefaultHttpxClient`), trusting
    REMPART_CA when it is set."""
    import ssl

    ca = os.environ.get("REMPART_CA")
    if not ca:
        return None
    return sdk.DefaultHttpxClient(verify=ssl.create_default_context(cafile=ca))


LOOKUP = {
    "name": "lookup_ip",
    "description": "Reputation of an IP address",
    "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
}


class Verdict(pydantic.BaseModel):
    verdict: str
    summary: str


def run_openai(scenario):
    import openai

    client = openai.OpenAI(
        base_url=URL + "/v1", api_key=TOKEN, max_retries=0, default_headers=HEADERS, http_client=http_client(openai)
    )
    messages = [{"role": "user", "content": PROMPT}]
    try:
        if scenario == "models":
            return {"models": [m.id for m in client.models.list()]}
        if scenario == "plain":
            r = client.chat.completions.create(model=MODEL, messages=messages)
            return {
                "id": r.id,
                "model": r.model,
                "content": r.choices[0].message.content,
                "finish_reason": r.choices[0].finish_reason,
                "usage": r.usage.model_dump(),
            }
        if scenario == "stream":
            chunks, content, usage = 0, "", None
            for c in client.chat.completions.create(
                model=MODEL, messages=messages, stream=True, stream_options={"include_usage": True}
            ):
                chunks += 1
                if c.usage:
                    usage = c.usage.model_dump()
                if c.choices and c.choices[0].delta.content:
                    content += c.choices[0].delta.content
            return {"content": content, "chunks": chunks, "usage": usage}
        if scenario == "tools":
            r = client.chat.completions.create(
                model=MODEL, messages=messages, tools=[{"type": "function", "function": LOOKUP}], tool_choice="required"
            )
            calls = r.choices[0].message.tool_calls or []
            first = {
                "finish_reason": r.choices[0].finish_reason,
                "calls": [{"id": c.id, "name": c.function.name, "arguments": json.loads(c.function.arguments)} for c in calls],
            }
            # The second turn: the tool's result goes back with the call.
            follow = messages + [
                r.choices[0].message.model_dump(exclude_none=True),
                {"role": "tool", "tool_call_id": calls[0].id, "content": "known scanner"},
            ]
            r2 = client.chat.completions.create(model=MODEL, messages=follow, tools=[{"type": "function", "function": LOOKUP}])
            first["answer"] = r2.choices[0].message.content
            return first
        if scenario == "tools_stream":
            calls = {}
            with client.chat.completions.stream(
                model=MODEL, messages=messages, tools=[{"type": "function", "function": LOOKUP}], tool_choice="required"
            ) as stream:
                final = stream.get_final_completion()
            for c in final.choices[0].message.tool_calls or []:
                calls[c.function.name] = json.loads(c.function.arguments)
            return {"calls": calls, "finish_reason": final.choices[0].finish_reason}
        if scenario == "structured":
            r = client.chat.completions.parse(model=MODEL, messages=messages, response_format=Verdict)
            return {"parsed": r.choices[0].message.parsed.model_dump()}
        if scenario == "structured_stream":
            with client.chat.completions.stream(model=MODEL, messages=messages, response_format=Verdict) as stream:
                final = stream.get_final_completion()
            return {"parsed": final.choices[0].message.parsed.model_dump()}
        raise SystemExit(f"unknown scenario {scenario}")
    except openai.APIStatusError as e:
        return {"error": {"status": e.status_code, "body": e.body}}


def run_openai_responses(scenario):
    """The same scenarios through OpenAI's Responses API (`client.responses`)."""
    import openai

    client = openai.OpenAI(
        base_url=URL + "/v1", api_key=TOKEN, max_retries=0, default_headers=HEADERS, http_client=http_client(openai)
    )
    tool = {"type": "function", "strict": False, **LOOKUP}
    try:
        if scenario == "plain":
            r = client.responses.create(model=MODEL, input=PROMPT)
            return {
                "id": r.id,
                "model": r.model,
                "content": r.output_text,
                "status": r.status,
                "store": r.store,
                "usage": r.usage.model_dump(),
            }
        if scenario == "stream":
            content, events, usage, kinds = "", 0, None, []
            for e in client.responses.create(model=MODEL, input=PROMPT, stream=True):
                events += 1
                kinds.append(e.type)
                if e.type == "response.output_text.delta":
                    content += e.delta
                if e.type == "response.completed":
                    usage = e.response.usage.model_dump()
                    final = e.response.output_text
            return {"content": content, "final": final, "events": events, "kinds": kinds, "usage": usage}
        if scenario == "tools":
            r = client.responses.create(model=MODEL, input=PROMPT, tools=[tool], tool_choice="required")
            calls = [o for o in r.output if o.type == "function_call"]
            first = {
                "status": r.status,
                "calls": [{"id": c.call_id, "name": c.name, "arguments": json.loads(c.arguments)} for c in calls],
            }
            # The second turn: the whole conversation again (stateless), with the tool's result.
            follow = (
                [{"role": "user", "content": PROMPT}]
                + [o.model_dump(exclude_none=True) for o in r.output]
                + [{"type": "function_call_output", "call_id": calls[0].call_id, "output": "known scanner"}]
            )
            first["answer"] = client.responses.create(model=MODEL, input=follow, tools=[tool]).output_text
            return first
        if scenario == "tools_stream":
            with client.responses.stream(model=MODEL, input=PROMPT, tools=[tool], tool_choice="required") as stream:
                final = stream.get_final_response()
            calls = {o.name: json.loads(o.arguments) for o in final.output if o.type == "function_call"}
            return {"calls": calls, "status": final.status}
        if scenario == "structured":
            r = client.responses.parse(model=MODEL, input=PROMPT, text_format=Verdict)
            return {"parsed": r.output_parsed.model_dump()}
        if scenario == "structured_stream":
            with client.responses.stream(model=MODEL, input=PROMPT, text_format=Verdict) as stream:
                final = stream.get_final_response()
            return {"parsed": final.output_parsed.model_dump()}
        if scenario == "stored":
            r = client.responses.create(model=MODEL, input=PROMPT, store=True)
            return {"id": r.id}
        if scenario == "previous":
            r = client.responses.create(model=MODEL, input=PROMPT, previous_response_id="resp_earlier")
            return {"id": r.id}
        raise SystemExit(f"unknown scenario {scenario}")
    except openai.APIStatusError as e:
        return {"error": {"status": e.status_code, "body": e.body}}


def run_anthropic(scenario):
    import anthropic

    client = anthropic.Anthropic(
        base_url=URL, api_key=TOKEN, max_retries=0, default_headers=HEADERS, http_client=http_client(anthropic)
    )
    messages = [{"role": "user", "content": PROMPT}]
    tool = {"name": LOOKUP["name"], "description": LOOKUP["description"], "input_schema": LOOKUP["parameters"]}
    try:
        if scenario == "plain":
            r = client.messages.create(model=MODEL, max_tokens=256, messages=messages)
            return {
                "id": r.id,
                "model": r.model,
                "content": "".join(b.text for b in r.content if b.type == "text"),
                "stop_reason": r.stop_reason,
                "usage": {"input_tokens": r.usage.input_tokens, "output_tokens": r.usage.output_tokens},
            }
        if scenario == "stream":
            text, events = "", 0
            with client.messages.stream(model=MODEL, max_tokens=256, messages=messages) as stream:
                for t in stream.text_stream:
                    text += t
                    events += 1
                final = stream.get_final_message()
            return {
                "content": text,
                "events": events,
                "stop_reason": final.stop_reason,
                "usage": {"input_tokens": final.usage.input_tokens, "output_tokens": final.usage.output_tokens},
            }
        if scenario == "tools":
            r = client.messages.create(
                model=MODEL, max_tokens=256, messages=messages, tools=[tool], tool_choice={"type": "any"}
            )
            calls = [b for b in r.content if b.type == "tool_use"]
            follow = messages + [
                {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in r.content]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": calls[0].id, "content": "known scanner"}]},
            ]
            r2 = client.messages.create(model=MODEL, max_tokens=256, messages=follow, tools=[tool])
            return {
                "stop_reason": r.stop_reason,
                "calls": [{"id": c.id, "name": c.name, "input": c.input} for c in calls],
                "answer": "".join(b.text for b in r2.content if b.type == "text"),
            }
        if scenario == "tools_stream":
            with client.messages.stream(
                model=MODEL, max_tokens=256, messages=messages, tools=[tool], tool_choice={"type": "any"}
            ) as stream:
                final = stream.get_final_message()
            return {
                "stop_reason": final.stop_reason,
                "calls": {b.name: b.input for b in final.content if b.type == "tool_use"},
            }
        if scenario == "structured":
            r = client.messages.parse(model=MODEL, max_tokens=256, messages=messages, output_format=Verdict)
            return {"parsed": r.parsed_output.model_dump()}
        raise SystemExit(f"unknown scenario {scenario}")
    except anthropic.APIStatusError as e:
        return {"error": {"status": e.status_code, "body": e.body}}


if __name__ == "__main__":
    sdk, scenario = sys.argv[1], sys.argv[2]
    run = {"openai": run_openai, "openai-responses": run_openai_responses, "anthropic": run_anthropic}[sdk]
    result = run(scenario)
    print(json.dumps(result))
