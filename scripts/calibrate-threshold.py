#!/usr/bin/env python3
"""One refusal threshold for several question sets.

`rag eval --json` reports, per question, the best candidate's cosine similarity and whether the
question is answerable (`best_similarities`). This picks the threshold that maximises the mean
over the sets of each set's balanced accuracy (answered when answerable + refused when not, / 2),
so a small set counts as much as a large one, and prints the table for every candidate.

    rag eval --json > a.json
    rag eval --json --questions benches/eval/debian-policy.jsonl --corpus DIR > b.json
    scripts/calibrate-threshold.py a.json b.json
"""
import json
import sys


def balanced(scores, t):
    answerable = [s for s, a in scores if a]
    unanswerable = [s for s, a in scores if not a]
    answered = sum(s >= t for s in answerable) / len(answerable) if answerable else 0.0
    refused = sum(s < t for s in unanswerable) / len(unanswerable) if unanswerable else 0.0
    return (answered + refused) / 2, answered, refused


def main(paths):
    sets = []
    for path in paths:
        with open(path) as f:
            sets.append((path, json.load(f)["best_similarities"]))
    # Candidates: just above each observed score (a question at exactly t is answered).
    candidates = sorted({round(s + 1e-4, 4) for _, scores in sets for s, _ in scores})
    best = max(candidates, key=lambda t: (sum(balanced(s, t)[0] for _, s in sets) / len(sets), -t))
    mean = sum(balanced(s, best)[0] for _, s in sets) / len(sets)
    print(f"calibrated threshold {best:.3f}: mean balanced accuracy {mean:.3f}")
    for path, scores in sets:
        acc, answered, refused = balanced(scores, best)
        print(f"  {path}: balanced {acc:.3f} (answered when answerable {answered:.3f}, "
              f"refused when not {refused:.3f}; {len(scores)} questions)")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
