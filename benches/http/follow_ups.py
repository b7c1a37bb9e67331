"""Follow-up questions over /v1/ask: what the rewrite costs and whether retrieval still finds
the right document. Each pair is asked as a first question, then as a follow-up with the first
as history; prints one line per question (rewrite ms, first token ms, status, top source,
the rewrite and how it was made, then the answer) and a summary as JSON. Standard library only.

Usage: follow_ups.py BASE_URL [SET] [API_KEY]   (SET: a, the pairs the rewrite check was
developed on; b, pairs written afterwards and never used to change it)
"""

import json
import statistics
import sys
import urllib.request

base = sys.argv[1]
which = sys.argv[2] if len(sys.argv) > 2 else "a"
key = sys.argv[3] if len(sys.argv) > 3 else None
# (first question, follow-up, the document that answers the follow-up; None: none does)
PAIRS = [
    ("How many days of paid annual leave does a full-time employee get?",
     "And how many of them can be carried over?", "handbook/leave-policy.md"),
    ("What is the hotel limit per night in Paris?", "What about London?",
     "finance/expense-policy.pdf"),
    ("How long must a password be?", "And how often must it be changed?",
     "it/security-guidelines.md"),
    ("How many days per week can I work remotely?", "Who approves it?",
     "handbook/remote-work.md"),
    ("What does VPN error NWC-412 mean?", "How do I fix it?", "it/vpn-setup.txt"),
    ("When does the new office in Busan open?", "And where is it?",
     "meetings/2026-q3-all-hands.txt"),
    ("How many days of paid annual leave does a full-time employee get?",
     "What is the boiling point of mercury?", None),
]

PAIRS_B = [
    ("How many days per week can I work remotely?", "And from abroad?",
     "handbook/remote-work.md"),
    ("What are the core collaboration hours?", "Is there a stipend for the home office too?",
     "handbook/remote-work.md"),
    ("How long must a password be?", "Is MFA required as well?", "it/security-guidelines.md"),
    ("What happens if I lose my laptop?", "How quickly must I report it?",
     "it/security-guidelines.md"),
    ("When does the new office in Busan open?", "Which team will work there?",
     "meetings/2026-q3-all-hands.txt"),
    ("How many weeks of parental leave do birth parents get?", "And other parents?",
     "handbook/leave-policy.md"),
    ("What is the home office stipend?", "Who wrote Hamlet?", None),
]
if which == "b":
    PAIRS = PAIRS_B


def ask(question, history):
    body = json.dumps({"question": question, "history": history, "max_tokens": 64}).encode()
    request = urllib.request.Request(base + "/v1/ask", data=body, method="POST")
    request.add_header("content-type", "application/json")
    if key:
        request.add_header("authorization", "Bearer " + key)
    with urllib.request.urlopen(request) as response:
        lines = [line.decode().strip() for line in response]
    events = {}
    for i, line in enumerate(lines):
        if line.startswith("event: "):
            events[line[7:]] = json.loads(lines[i + 1][5:])
    return events


def top_source(events):
    sources = events["sources"]["sources"]
    return sources[0]["chunk"]["source_path"] if sources else None


def right_for(events, expected):
    if expected:
        return top_source(events) == expected
    return events["answer"]["status"] == "not_found"


rewrites, firsts, right, alone, by = [], [], 0, 0, {}
for first, follow, expected in PAIRS:
    answer = ask(first, [])["answer"]
    events = ask(follow, [{"question": first, "answer": answer["text"]}])
    a, r = events["answer"], events.get("rewrite", {})
    top = top_source(events)
    ok = right_for(events, expected)
    right += ok
    # The same follow-up without its conversation: what the rewrite is for.
    alone += right_for(ask(follow, []), expected)
    rewrites.append(a["timings"]["rewrite_ms"])
    if a["timings"]["first_token_ms"] > 0:  # 0: no token (refused before the model)
        firsts.append(a["timings"]["first_token_ms"])
    by[r.get("by")] = by.get(r.get("by"), 0) + 1
    print(f'{a["timings"]["rewrite_ms"]:.0f} ms  {a["timings"]["first_token_ms"]:.0f} ms  '
          f'{a["status"]:<10} {top}  {"ok" if ok else "WRONG"}  {follow!r} -> {r.get("question")!r} ({r.get("by")})')
    # What was said: whether it answers the follow-up, not the earlier question, is read here.
    print(f'    answer: {a["text"][:200]!r}')
print(json.dumps({"follow_ups": len(PAIRS), "right": right, "right_without_history": alone,
                  "rewrite_p50_ms":
                  round(statistics.median(rewrites)),
                  "first_token_p50_ms": round(statistics.median(firsts)), "by": by}))
