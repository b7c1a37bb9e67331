#!/usr/bin/env python3
"""Question set from the Debian Policy manual's own structure (for `rag eval`).

Every section heading of the manual's HTML chapters (ch-*.html, ap-*.html) becomes a question
whose relevant document is the chapter file that holds the section; a fixed list of questions
the manual does not answer is appended for refusal. Section numbers and the pilcrow are
stripped from headings. Usage: scripts/make-eval-policy.py CORPUS_DIR > questions.jsonl
where CORPUS_DIR is what scripts/bench-corpus.sh built (the chapters are under policy/).
"""
import html
import json
import re
import sys
from pathlib import Path

OUT_OF_CORPUS = [
    "What is the capital of Australia?",
    "How do I bake sourdough bread?",
    "Who won the football world cup in 2014?",
    "How many calories are in a banana?",
    "What is the best way to learn the piano?",
    "How do I replace a bicycle chain?",
    "When was the Eiffel Tower built?",
    "What is the exchange rate between euros and yen?",
    "How do I train a puppy to sit?",
    "Which planets have rings?",
]

corpus = Path(sys.argv[1])
heading = re.compile(r"<h([23])[^>]*>(.*?)</h\1>", re.S)
for page in sorted((corpus / "policy").glob("*.html")):
    if not re.match(r"(ch|ap)-", page.name):
        continue
    text = page.read_text(encoding="utf-8", errors="replace")
    for _, raw in heading.findall(text):
        title = html.unescape(re.sub(r"<[^>]+>", "", raw)).replace("\u00b6", "")
        title = re.sub(r"^\s*[A-Z]?[\d.]+\s*", "", " ".join(title.split())).strip()
        # The Sphinx sidebar's own headings are not sections of the manual.
        if len(title.split()) < 2 or title in ("This Page", "Quick search", "Navigation"):
            continue
        print(json.dumps({"question": title, "sources": [f"policy/{page.name}"]}, ensure_ascii=False))
for q in OUT_OF_CORPUS:
    print(json.dumps({"question": q, "sources": []}))
