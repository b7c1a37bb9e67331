"""Time to first token of /v1/ask (HTTP, Server-Sent Events), as a client sees it.

Asks the questions one after another for SECONDS (one client, like `rag load --ask-clients 1`,
so the two doors are compared on the same questions and the same service) and prints the
percentiles as JSON. Standard library only.

Usage: ttft.py BASE_URL QUESTIONS_FILE [SECONDS] [MAX_TOKENS] [API_KEY]
"""

import json
import statistics
import sys
import time
import urllib.request

base, questions_file = sys.argv[1], sys.argv[2]
seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 60
max_tokens = int(sys.argv[4]) if len(sys.argv) > 4 else 64
key = sys.argv[5] if len(sys.argv) > 5 else None
questions = [q.strip() for q in open(questions_file, encoding="utf-8") if q.strip()]


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


first_tokens, totals, sources = [], [], []
started = time.monotonic()
i = 0
while time.monotonic() - started < seconds:
    question = questions[i % len(questions)]
    i += 1
    body = json.dumps({"question": question, "max_tokens": max_tokens}).encode()
    request = urllib.request.Request(base + "/v1/ask", data=body, method="POST")
    request.add_header("content-type", "application/json")
    if key:
        request.add_header("authorization", "Bearer " + key)
    t0 = time.monotonic()
    first = None
    with urllib.request.urlopen(request) as response:
        for raw in response:
            line = raw.decode().strip()
            if line == "event: sources":
                sources.append(time.monotonic() - t0)
            if line == "event: token" and first is None:
                first = time.monotonic() - t0
    totals.append(time.monotonic() - t0)
    if first is not None:
        first_tokens.append(first)

ms = lambda v: round(v * 1000, 1)
print(
    json.dumps(
        {
            "answers": len(totals),
            "first_token_p50_ms": ms(statistics.median(first_tokens)) if first_tokens else None,
            "first_token_p95_ms": ms(pct(first_tokens, 95)) if first_tokens else None,
            "first_token_p99_ms": ms(pct(first_tokens, 99)) if first_tokens else None,
            "sources_p50_ms": ms(statistics.median(sources)) if sources else None,
            "total_p50_ms": ms(statistics.median(totals)),
        }
    )
)
