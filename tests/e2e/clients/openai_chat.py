"""The official OpenAI Python client against the service's OpenAI-compatible endpoint.

Usage: openai_chat.py BASE_URL API_KEY QUESTION
Prints one JSON object with what the client saw; fails (non-zero exit) on any client error
that is not the expected one.
"""

import json
import sys

import openai

base_url, api_key, question = sys.argv[1], sys.argv[2], sys.argv[3]
client = openai.OpenAI(base_url=base_url + "/v1", api_key=api_key, max_retries=0, timeout=300)

models = [m.id for m in client.models.list()]

plain = client.chat.completions.create(
    model="rag", messages=[{"role": "user", "content": question}], max_tokens=48
)
rag = (plain.model_extra or {}).get("rag", {})

stream = client.chat.completions.create(
    model="rag",
    messages=[{"role": "user", "content": question}],
    max_tokens=48,
    stream=True,
)
streamed, pieces, finish, stream_rag = "", 0, None, {}
for chunk in stream:
    extra = chunk.model_extra or {}
    for key, value in (extra.get("rag") or {}).items():
        stream_rag[key] = value
    for choice in chunk.choices:
        if choice.delta.content:
            streamed += choice.delta.content
            pieces += 1
        if choice.finish_reason:
            finish = choice.finish_reason

try:
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": question}])
    unknown_model = "accepted"
except openai.NotFoundError as e:
    unknown_model = "not_found"

try:
    openai.OpenAI(base_url=base_url + "/v1", api_key="wrong-key", max_retries=0).models.list()
    wrong_key = "accepted"
except openai.AuthenticationError:
    wrong_key = "unauthenticated"

print(
    json.dumps(
        {
            "models": models,
            "content": plain.choices[0].message.content,
            "finish_reason": plain.choices[0].finish_reason,
            "object": plain.object,
            "usage": plain.usage.total_tokens if plain.usage else None,
            "status": rag.get("answer", {}).get("status"),
            "sources": [s["chunk"]["source_path"] for s in rag.get("sources", [])],
            "citations": [c["source_path"] for c in rag.get("answer", {}).get("citations", [])],
            "streamed": streamed,
            "pieces": pieces,
            "stream_finish": finish,
            "stream_status": stream_rag.get("answer", {}).get("status"),
            "stream_sources": [s["chunk"]["source_path"] for s in stream_rag.get("sources", [])],
            "unknown_model": unknown_model,
            "wrong_key": wrong_key,
        }
    )
)
