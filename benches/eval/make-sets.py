#!/usr/bin/env python3
"""Natural-question sets for `rag eval`, labelled by the material's own structure (issue 13).

Downloads pinned Debian documentation packages (`apt-get download`, no install; each .deb is
checked against the sha256 below and the script stops on any mismatch), unpacks them with
`dpkg-deb -x` under --out, writes one corpus folder per set under --out, and writes the
question sets (JSON lines, the format `rag eval` reads) into benches/eval/:

  python-faq.jsonl   English questions, English answers. The Python FAQ (python3-doc ->
                     python3.11-doc; the reStructuredText sources Sphinx ships in
                     html/_sources/faq/). Every question heading is a question; the section
                     under it is its answer, written as one file. Corpus: python-faq/.
  git-faq.jsonl      English, Git's gitfaq(7) (git-doc; the AsciiDoc source gitfaq.txt). Every
                     question entry (`Question?::`) is a question, its body the answer, one file
                     each. Corpus: git-faq/.
  gimp-ko.jsonl      Korean questions, Korean answers. GIMP's help manual, shipped with the same
                     structure in Korean (gimp-help-ko) and English (gimp-help-en). A Korean
                     section title is the question; the Korean page that holds the section is
                     the answer (one file per page). Corpus: gimp-ko/.
  gimp-ko-en.jsonl   The same Korean questions; the aligned English page (same file name, same
                     section at the same position with the same number) is the answer.
                     Corpus: gimp-en/.
  libreoffice-en.jsonl, libreoffice-ko.jsonl, libreoffice-ko-en.jsonl
                     LibreOffice's task guides (text/*/guide/*.html in libreoffice-help-en-us and
                     libreoffice-help-ko, same paths, same headings): a page title ("Inserting
                     Hyperlinks With the Navigator", "내비게이터를 사용하여 하이퍼링크 삽입")
                     is the question, the page without it the answer (one file per page, other
                     headings kept). English over English (corpus libreoffice-en/), Korean over
                     Korean where the Korean page is translated (libreoffice-ko/), Korean over
                     the aligned English page (libreoffice-en/).
  zsh-faq.jsonl      English, the Z-Shell FAQ (zsh-doc; FAQ01.html ... FAQ06.html, one chapter
                     each): every numbered section (`3.13: How do I ...?`) is a question, its
                     number stripped, the section the answer, one file each. Corpus: zsh-faq/.
  perl-faq.jsonl     English, perlfaq1-9 (perl-doc; POD sources): every =head2 is a question,
                     its body the answer, one file each; 200 of the 306 questions, evenly
                     spaced (the other answers stay, with their question as a heading). Set
                     aside (issue 24): not used to tune retrieval. Corpus: perl-faq/.
  out-of-corpus-en.jsonl, out-of-corpus-ko.jsonl
                     Questions none of these corpora answer (written by hand, below), with
                     `"sources": []`, for refusal: append them to a set when running eval.

In every corpus the question headings are removed from the indexed text; the answers and the
other headings above and inside them (page title, category, subsections not used as questions)
stay, as Markdown headings. File names are neutral (page name and a number, or a page number
for GIMP, whose file names describe the topic in English); gimp-pages.tsv under --out maps them
back.

Rules (all deterministic):
  * A question is dropped as too generic when its title has fewer than two words (`Overview`,
    `소개`, `옵션`), when all its words are in GENERIC (`Other methods`, `다른 방법`), or when the
    same title heads more than two candidate sections of a corpus (`Activating the Filter`,
    `도구 옵션`: no one section answers it); the heading of a dropped question stays in the text.
    A title that heads two sections (`What is Python?` in two FAQ pages) keeps both as sources.
    zsh-faq and perl-faq also drop a title that names its subject only by a pronoun (it, this,
    that, they, them) with fewer than two other words outside FUNCTION_WORDS (`What is it?`).
  * GIMP: a page is used when its Korean and English versions have the same headings (same count,
    same section numbers), it is a content page (DocBook sect1, sect2, chapter, appendix, preface
    or refentry; not a book, part or reference table of contents, glossary, index or
    bibliography), and at least one of its sections is a candidate: a Korean title (with Hangul
    once its number is stripped) over an English section of at least 15 words. Every candidate is
    a question of gimp-ko-en. It is also a question of gimp-ko when the Korean section itself is
    translated: at least 50 % of its words contain Hangul, and it has at least 15 words. (Most of
    the Korean manual is untranslated English; such sections keep their headings in gimp-ko.)
  * LibreOffice: a guide page is used when its Korean and English versions have the same
    headings at the same levels with one h1 (the title) first, and its English text has at least
    15 words. The "Related Topics" link lists (other pages' titles) and the page frame are left
    out. A Korean question needs a Korean title; Korean over Korean also needs the page
    translated (at least 50 % of its words contain Hangul).
  * Limits: at most MAX_PAGES GIMP pages (first by file name), MAX_PAGES_LIBREOFFICE LibreOffice
    pages (evenly spaced in path order) and MAX_QUESTIONS questions per set (evenly spaced;
    MAX_QUESTIONS_NEW for perl-faq).

Usage: benches/eval/make-sets.py [--out /tmp/rag-eval-corpora] [--debs DIR] [--sets-dir DIR]
Needs: Python 3 (standard library), apt-get (with Debian bookworm sources), dpkg-deb.
"""
import argparse
import collections
import hashlib
import html
import html.parser
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

# Debian bookworm packages, as downloaded for the shipped sets. python3-doc 3.11.2-1 is only a
# dependency package pointing at python3.11-doc, which holds the FAQ.
PACKAGES = [
    ("python3.11-doc", "3.11.2-6+deb12u9",
     "5b3594189d6ef9a6963ce0347fd307a1cc67620ad697e144db366070e2e146be"),
    ("git-doc", "1:2.39.5-0+deb12u3",
     "3c89668a11053a6bafade3de1f611f4613db31e082af63f43d8c5b69ad8795ec"),
    ("gimp-help-en", "2.10.34-2",
     "a2deec76763aaf2fcdd197bac0736cdcb0770ba993d48d233329e1c92b0bfe36"),
    ("gimp-help-ko", "2.10.34-2",
     "c8094280b19d858cc32b6d9278d7d6126bf41c05f6fcc45d2c07ee41b68f750b"),
    ("libreoffice-help-en-us", "4:7.4.7-1+deb12u14",
     "8faa840285734d6cfe1ed25537b48f07e74bd6412e3917bf8e5f8a653f7b3712"),
    ("libreoffice-help-ko", "4:7.4.7-1+deb12u14",
     "7ef2d854e9ed58e6bf861cfa9fa2579555233f9df874baf327fcb07ccd190669"),
    ("perl-doc", "5.36.0-7+deb12u4",
     "f4269cff4576d6f02a6756df842988e58451c7e945b08517dd235531b24e48f8"),
    ("zsh-doc", "5.9-4",
     "79bd75df4bf03d1021e993fd773f82b8a4c8d76649e420cd32eca940cf418ff4"),
]
# The sets each group of --only makes, by the packages it needs.
GROUPS = {
    "python-faq": ["python3.11-doc"],
    "git-faq": ["git-doc"],
    "gimp": ["gimp-help-en", "gimp-help-ko"],
    "libreoffice": ["libreoffice-help-en-us", "libreoffice-help-ko"],
    "perl-faq": ["perl-doc"],
    "zsh-faq": ["zsh-doc"],
}
# Held out for the team's own checks (issue 13): never downloaded, indexed or evaluated here.
HELD_OUT = re.compile(r"^debian-faq")

MAX_PAGES = 200
MAX_PAGES_LIBREOFFICE = 400
MAX_QUESTIONS = 400
MAX_QUESTIONS_NEW = 200  # perl-faq (issue 24): 200 of its 306 questions

OUT_OF_CORPUS_EN = [
    "How long should I boil an egg for a soft yolk?",
    "What is the capital city of Australia?",
    "How do I renew my passport before travelling abroad?",
    "Which vaccines does a puppy need in its first year?",
    "How often should I change the oil in my car?",
    "What are the rules of offside in football?",
    "How do I get rid of aphids on my roses?",
    "What is the difference between a Roth IRA and a traditional IRA?",
    "How many hours of sleep does a teenager need?",
    "Who painted the ceiling of the Sistine Chapel?",
    "How do I tune a six-string guitar by ear?",
    "What should I pack for a week of hiking in the Alps?",
    "How do I configure a VLAN on a Cisco switch?",
    "What is the boiling point of water at high altitude?",
    "How do I knit a scarf for a beginner?",
    "When does the tax year end in the United Kingdom?",
    "How do I set up a Kubernetes ingress controller?",
    "Why do cats purr?",
    "How much water should a marathon runner drink during a race?",
    "What causes the northern lights?",
]
OUT_OF_CORPUS_KO = [
    "반숙 달걀은 몇 분 동안 삶아야 하나요?",
    "호주의 수도는 어디인가요?",
    "여권을 갱신하려면 어떤 서류가 필요한가요?",
    "강아지는 첫해에 어떤 예방 접종을 맞아야 하나요?",
    "자동차 엔진 오일은 얼마나 자주 교체해야 하나요?",
    "축구에서 오프사이드 규칙은 무엇인가요?",
    "장미에 생긴 진딧물은 어떻게 없애나요?",
    "청소년은 하루에 몇 시간 자야 하나요?",
    "시스티나 성당의 천장화는 누가 그렸나요?",
    "기타를 귀로 조율하는 방법을 알려 주세요.",
    "김치찌개를 맛있게 끓이는 방법은 무엇인가요?",
    "연말정산 때 의료비 공제는 어떻게 받나요?",
    "지하철 정기권은 어디에서 살 수 있나요?",
    "고양이는 왜 가르랑거리나요?",
    "마라톤 중에는 물을 얼마나 마셔야 하나요?",
    "오로라는 왜 생기나요?",
    "전세 계약을 할 때 주의할 점은 무엇인가요?",
    "비행기에 보조 배터리를 가지고 탈 수 있나요?",
    "운전면허 적성검사는 언제 받아야 하나요?",
    "독감 예방 주사는 언제 맞는 것이 좋나요?",
]

# Words that say nothing about a topic on their own: a title made only of these is generic.
GENERIC = {
    "a", "an", "the", "of", "to", "and", "or", "other", "more", "general", "overview",
    "introduction", "options", "option", "example", "examples", "method", "methods", "way",
    "ways", "description", "using", "usage", "notes", "note", "tips", "see", "also",
    "activating", "activate", "filter", "tool", "dialog", "parameters", "settings",
    "다른", "방법", "옵션", "개요", "소개", "예제", "예", "설명", "활성화", "사용법", "사용하기",
    "참고", "일반", "기타", "필터", "도구", "대화", "창", "설정", "매개변수", "팁",
}
# perl-faq and zsh-faq only (issue 24): a title that names its subject only by a pronoun
# ("What is it?", "Where do I get it?": "it" is the FAQ's program) is too vague to ask alone.
FUNCTION_WORDS = {
    "what", "which", "who", "where", "when", "why", "how", "is", "are", "was", "were", "be",
    "do", "does", "did", "can", "could", "should", "would", "will", "may", "must", "i", "me",
    "my", "you", "your", "we", "it", "its", "this", "that", "they", "them", "there", "a", "an",
    "the", "of", "to", "in", "on", "at", "for", "with", "from", "by", "about", "and", "or",
    "not", "s", "t",
}
PRONOUNS = {"it", "this", "that", "they", "them"}
HANGUL = re.compile(r"[\uac00-\ud7a3]")
WORD = re.compile(r"\w+")


def die(message):
    sys.exit(f"make-sets.py: {message}")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch_debs(debs, extra_dir, wanted):
    """The pinned .debs named in `wanted` in `debs` (downloaded if absent), each checked against
    its sha256."""
    debs.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, version, digest in PACKAGES:
        if name not in wanted:
            continue
        assert not HELD_OUT.match(name), name
        filename = f"{name}_{version.replace(':', '%3a')}_all.deb"
        candidates = [debs / filename]
        if extra_dir:
            candidates.insert(0, Path(extra_dir) / filename)
        found = next((p for p in candidates if p.exists()), None)
        if found is None:
            print(f"downloading {name}={version}", file=sys.stderr)
            r = subprocess.run(["apt-get", "download", f"{name}={version}"], cwd=debs)
            if r.returncode != 0 or not (debs / filename).exists():
                die(f"apt-get download {name}={version} failed; this version may have left the "
                    "archive: fetch that exact file (e.g. from a Debian snapshot archive) and "
                    "pass its folder with --debs")
            found = debs / filename
        got = sha256(found)
        if got != digest:
            die(f"SHA256 MISMATCH for {found}: expected {digest}, got {got}. The package is not "
                "the one the shipped sets were made from; refusing to continue.")
        print(f"ok {found.name} sha256 {got}", file=sys.stderr)
        paths.append(found)
    return paths


def extract(debs, root):
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    for deb in debs:
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)


def words(text):
    return WORD.findall(text)


def hangul_share(text):
    ws = [w for w in words(text) if not w.isdigit()]
    return sum(1 for w in ws if HANGUL.search(w)) / len(ws) if ws else 0.0


class Questions:
    """Questions of one set, with the generic-title rules applied when written."""

    def __init__(self, vague_pronouns=False):
        self.by_title = collections.OrderedDict()
        self.vague_pronouns = vague_pronouns

    def add(self, title, source):
        self.by_title.setdefault(title, []).append(source)

    def usable(self, title):
        ws = [w.lower() for w in words(title)]
        if self.vague_pronouns and set(ws) & PRONOUNS and \
                sum(1 for w in ws if w not in FUNCTION_WORDS) < 2:
            return False
        return (len(ws) >= 2 and len(self.by_title.get(title, [])) <= 2
                and not all(w in GENERIC for w in ws))

    def selected(self, limit):
        """The usable titles, at most `limit` of them, evenly spaced."""
        rows = [t for t in self.by_title if self.usable(t)]
        if len(rows) > limit:
            rows = [rows[i * len(rows) // limit] for i in range(limit)]
        return set(rows)

    def write(self, path):
        rows = [(t, s) for t, s in self.by_title.items() if self.usable(t)]
        if len(rows) > MAX_QUESTIONS:  # evenly spaced, so every part of the material is asked
            rows = [rows[i * len(rows) // MAX_QUESTIONS] for i in range(MAX_QUESTIONS)]
        with open(path, "w", encoding="utf-8") as f:
            for title, sources in rows:
                f.write(json.dumps({"question": title, "sources": sorted(set(sources))},
                                   ensure_ascii=False) + "\n")
        return len(rows)


def reset(folder):
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)


# --- Python FAQ (reStructuredText) ---------------------------------------------------------

RST_UNDERLINE = re.compile(r"^([=\-~^\"*+#])\1{2,}\s*$")


def rst_inline(text):
    """Inline reStructuredText markup as plain Markdown-ish text."""
    def role(m):
        inner = m.group(1)
        inner = re.sub(r"\s*<[^>]*>$", "", inner) if "<" in inner else inner
        return "`" + inner.lstrip("~!") + "`"
    text = re.sub(r":[\w:+-]+:`([^`]+)`", role, text)
    text = re.sub(r"`([^`<]+?)\s*<[^>]+>`__?", r"\1", text)  # `text <url>`_
    text = re.sub(r"`([^`]+)`__?", r"\1", text)                # `text`_
    text = re.sub(r"``([^`]+)``", r"`\1`", text)
    return text


def rst_sections(text):
    """[(level, title, body_lines)] in order; level by the order underline styles appear."""
    lines = text.split("\n")
    styles, sections, body = [], [], []
    current = (0, None)
    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        over = RST_UNDERLINE.match(line) and i + 2 < len(lines) and RST_UNDERLINE.match(lines[i + 2])
        if over and lines[i + 1].strip():
            style, title, i = "over" + line[0], lines[i + 1].strip(), i + 3
        elif (line.strip() and not RST_UNDERLINE.match(line) and RST_UNDERLINE.match(nxt)
              and len(nxt.rstrip()) >= len(line.rstrip()) - 1 and not line.startswith(" ")):
            style, title, i = nxt[0], line.strip(), i + 2
        else:
            body.append(line)
            i += 1
            continue
        sections.append((current[0], current[1], body))
        if style not in styles:
            styles.append(style)
        current, body = (styles.index(style) + 1, title), []
    sections.append((current[0], current[1], body))
    return [s for s in sections if s[1] is not None]


def rst_body(lines):
    out = []
    skip_indented = False
    for line in lines:
        if skip_indented:
            if line.strip() == "" or line.startswith(" "):
                continue
            skip_indented = False
        if re.match(r"^\.\. _[^:]+:\s*$", line) or line.startswith(":tocdepth:"):
            continue
        if re.match(r"^\s*\.\. (only|contents|index|toctree)::", line):
            skip_indented = line.lstrip().startswith(".. contents") or ".. index" in line \
                or ".. toctree" in line
            continue
        m = re.match(r"^(\s*)\.\. (\w[\w-]*)::\s*(.*)$", line)
        if m:  # other directives: their label as text, their content stays
            kind, arg = m.group(2), m.group(3)
            if kind in ("note", "warning", "seealso", "versionadded", "versionchanged"):
                out.append(m.group(1) + kind.capitalize() + (": " + arg if arg else ":"))
            continue
        out.append(rst_inline(line.rstrip()))
    text = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def python_faq(root, corpus, questions):
    faq = root / "usr/share/doc/python3.11/html/_sources/faq"
    pages = sorted(p for p in faq.glob("*.rst.txt") if p.name != "index.rst.txt")
    if not pages:
        die(f"no FAQ pages under {faq}")
    reset(corpus)
    files = 0
    for page in pages:
        name = page.name.split(".")[0]
        sections = rst_sections(page.read_text(encoding="utf-8"))
        # A question is a leaf section: no deeper section follows it before a sibling.
        open_titles = {}
        n = 0
        for i, (level, title, body) in enumerate(sections):
            open_titles = {l: t for l, t in open_titles.items() if l < level}
            nxt = sections[i + 1][0] if i + 1 < len(sections) else 0
            is_leaf = level > 1 and nxt <= level
            if not is_leaf:
                open_titles[level] = rst_inline(title)
                continue
            text = rst_body(body)
            if len(words(text)) < 5:
                continue
            n += 1
            rel = f"{name}/{name}-{n:03d}.md"
            heads = [("#" * l) + " " + open_titles[l] for l in sorted(open_titles)]
            (corpus / name).mkdir(exist_ok=True)
            (corpus / rel).write_text("\n\n".join(heads + [text]) + "\n", encoding="utf-8")
            questions.add(" ".join(rst_inline(title).split()), rel)
            files += 1
    return files


# --- gitfaq (AsciiDoc) ---------------------------------------------------------------------

def asciidoc_inline(text):
    text = re.sub(r"linkgit:([\w.-]+)\[(\d)\]", r"\1(\2)", text)
    text = re.sub(r"link:[^\[\s]+\[([^\]]*)\]", r"\1", text)
    text = re.sub(r"<<[^,>]+,\s*([^>]+)>>", r"\1", text)
    return text


def git_faq(root, corpus, questions):
    source = root / "usr/share/doc/git-doc/gitfaq.txt"
    lines = source.read_text(encoding="utf-8").split("\n")
    reset(corpus)
    category, entries, current = None, [], None
    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip() and re.fullmatch(r"-{3,}", nxt) and len(nxt) == len(line) \
                and not line.startswith("["):
            category = line.strip()
            current = None
            i += 2
            continue
        if re.fullmatch(r"\[\[[\w-]+\]\]", line.strip()):
            i += 1
            continue
        m = re.fullmatch(r"(.+)::", line.strip())
        if m and category not in (None, "NAME", "SYNOPSIS", "DESCRIPTION", "GIT"):
            current = {"category": category, "title": m.group(1), "body": []}
            entries.append(current)
            i += 1
            continue
        if current is not None:
            current["body"].append(line)
        i += 1
    files = 0
    for n, e in enumerate(entries, 1):
        out, fence = [], False
        for line in e["body"]:
            if line == "----":
                fence = not fence
                out.append("```")
            elif line == "+" and not fence:
                out.append("")
            else:
                out.append(line if fence else asciidoc_inline(line.strip()))
        body = re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()
        rel = f"gitfaq-{n:03d}.md"
        heads = ["# gitfaq: Frequently asked questions about using Git", "## " + e["category"]]
        (corpus / rel).write_text("\n\n".join(heads + [body]) + "\n", encoding="utf-8")
        title = " ".join(asciidoc_inline(e["title"]).replace("`", "").split())
        questions.add(title, rel)
        files += 1
    if files < 10:
        die(f"only {files} gitfaq entries parsed from {source}")
    return files


# --- perlfaq (POD) ---------------------------------------------------------------------------

POD_ENTITIES = {"lt": "<", "gt": ">", "verbar": "|", "sol": "/", "quot": '"', "amp": "&",
                "apos": "'"}


def pod_inline(text, page, plain=False):
    """POD formatting codes (C<>, I<>, L<>, E<>, C<< >> ...) as Markdown-ish text; `plain`
    leaves code unquoted (for titles). A link to a section of a perlfaq page (another question,
    word for word) keeps only the page's name."""
    out, i = [], 0
    while i < len(text):
        m = re.match(r"([A-Z])(<(?:<+\s)?)", text[i:])
        if not m:
            out.append(text[i])
            i += 1
            continue
        code, n = m.group(1), m.group(2).count("<")
        start = i + len(m.group(0))
        if n == 1:  # single brackets nest: count them
            depth, j = 1, start
            while j < len(text) and depth:
                if re.match(r"[A-Z]<", text[j:j + 2]) and not re.match(r"[A-Z]<<", text[j:j + 3]):
                    depth, j = depth + 1, j + 2
                    continue
                if text[j] == ">":
                    depth -= 1
                j += 1
            inner, i = text[start:j - 1], j
        else:  # C<< ... >>: up to whitespace and the same number of brackets
            close = re.compile(r"\s" + ">" * n)
            c = close.search(text, start)
            if not c:
                out.append(text[i])
                i += 1
                continue
            inner, i = text[start:c.start()], c.end()
        if code == "E":
            out.append(POD_ENTITIES.get(inner, chr(int(inner)) if inner.isdigit() else ""))
        elif code in ("X", "Z"):
            pass
        elif code == "L":
            out.append(pod_link(inner, page))
        elif code == "C":
            t = pod_inline(inner, page, True)
            out.append(t if plain else "`" + t + "`")
        else:  # I, B, F, S
            out.append(pod_inline(inner, page, plain))
    return "".join(out)


def pod_link(inner, page):
    if "|" in inner and not inner.startswith("|"):
        return pod_inline(inner.split("|", 1)[0], page, True)
    if re.match(r"\w+:", inner):  # a URL
        return inner
    name, _, section = inner.partition("/")
    name = name.strip() or page
    section = section.strip().strip('"')
    if not section or name.startswith("perlfaq"):
        return name
    return f'"{pod_inline(section, page, True)}" in {name}'


def pod_body(lines, page):
    """A POD fragment (no =head) as Markdown: paragraphs, verbatim paragraphs as code blocks,
    =item lists as "- " items."""
    paras, cur = [], []
    for line in lines + [""]:
        if line.strip():
            cur.append(line.rstrip())
        elif cur:
            paras.append(cur)
            cur = []
    out, code = [], []
    item = None

    def flush_code():
        if code:
            while code and not code[-1].strip():
                code.pop()
            indent = min(len(l) - len(l.lstrip()) for l in code if l.strip())
            out.append("```\n" + "\n".join(l[indent:] for l in code) + "\n```")
            code.clear()

    skip = False
    for p in paras:
        first = p[0]
        if first[0].isspace():
            if not skip:
                if code:
                    code.append("")
                code.extend(p)
            continue
        flush_code()
        if first.startswith("="):
            cmd, _, arg = first.partition(" ")
            arg = " ".join([arg] + p[1:]).strip()
            if cmd == "=begin":
                skip = True
            elif cmd == "=end":
                skip = False
            elif cmd == "=item":
                arg = arg.lstrip("*").strip()
                item = "- "
                if arg and not arg.isdigit():
                    out.append("- " + pod_inline(arg, page))
                    item = None
            continue  # =over, =back, =for, =cut, =pod, =encoding
        if skip:
            continue
        text = pod_inline(" ".join(l.strip() for l in p), page)
        out.append((item or "") + text)
        item = None
    flush_code()
    return "\n\n".join(out)


def perl_faq(root, corpus, questions):
    """perlfaq1-9 (perl-doc): every =head2 is a question, its body the answer, one file each
    under the page's NAME and its =head1 category (perlfaq4's `Data: Strings`). The index page
    perlfaq.pod (every question listed) is not used."""
    pod = root / "usr/share/perl/5.36.0/pod"
    pages = sorted(pod.glob("perlfaq[1-9].pod"))
    if len(pages) != 9:
        die(f"expected perlfaq1-9.pod under {pod}, found {len(pages)}")
    entries = []  # (page, title line, category, question, body lines)
    for path in pages:
        page = path.stem
        lines = path.read_text(encoding="utf-8").split("\n")
        title, category, current = page, None, None
        i = 0
        while i < len(lines):
            line = lines[i]
            m = re.match(r"^=head([12])\s+(.*)$", line)
            if m:
                current = None
                if m.group(1) == "1":
                    category = m.group(2).strip()
                    if category == "NAME":
                        title = lines[i + 2].strip() if i + 2 < len(lines) else page
                elif category not in ("NAME", "VERSION", "AUTHOR AND COPYRIGHT"):
                    current = [page, title, category, m.group(2).strip(), []]
                    entries.append(current)
            elif current is not None:
                current[4].append(line)
            i += 1
    if len(entries) < 100:
        die(f"only {len(entries)} perlfaq questions parsed under {pod}")
    reset(corpus)
    rows = []
    for page, title, category, question, body in entries:
        q = " ".join(pod_inline(question, page, True).split())
        rows.append((page, title, category, q, pod_body(body, page)))
        questions.add(q, None)
    asked = questions.selected(MAX_QUESTIONS_NEW)
    questions.by_title.clear()
    counts = collections.Counter()
    for page, title, category, q, text in rows:
        counts[page] += 1
        rel = f"{page}/{page}-{counts[page]:03d}.md"
        heads = ["# " + title]
        if category and category != "DESCRIPTION":
            heads.append("## " + category)
        if q not in asked:  # not asked: its heading stays
            heads.append("#" * (len(heads) + 1) + " " + q)
        (corpus / page).mkdir(exist_ok=True)
        (corpus / rel).write_text("\n\n".join(heads + [text]) + "\n", encoding="utf-8")
        if q in asked:
            questions.add(q, rel)
    return len(rows)


# --- zsh FAQ (HTML) --------------------------------------------------------------------------

ZSH_NAV = {"Table of Contents", "Previous Chapter", "Next Chapter"}


def zsh_block(block):
    """A <pre> block (text with a newline) without its indentation and blank edge lines."""
    if block[0] != "p" or "\n" not in block[1]:
        return block
    lines = [l.rstrip() for l in block[1].split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    indent = min((len(l) - len(l.lstrip()) for l in lines if l), default=0)
    return ("pre", "\n".join(l[indent:] for l in lines), block[2])


def zsh_markdown(blocks):
    """A section's blocks (no headings) as Markdown, <pre> blocks as code blocks."""
    return "\n\n".join("```\n" + b[1] + "\n```" if b[0] == "pre" else b[2] + b[1]
                       for b in blocks) + "\n"


def zsh_faq(root, corpus, questions):
    """The Z-Shell FAQ (zsh-doc: FAQ01.html ... FAQ06.html, one chapter each): every numbered
    h2 (`3.1: Why does $var ...?`) is a question, its section the answer, one file each under
    the FAQ's title and the chapter's. Unnumbered h2s (Acknowledgments, Copyright) are not."""
    html_dir = root / "usr/share/doc/zsh-common/html"
    pages = sorted(html_dir.glob("FAQ0[0-9].html"))
    if len(pages) < 5:
        die(f"expected FAQ01.html ... under {html_dir}, found {len(pages)}")
    entries = []  # (page name, chapter, question, answer text)
    for path in pages:
        _, blocks = parse_page(path, LibreOfficePage)
        blocks = [zsh_block(b) for b in blocks if not (b[0] == "p" and b[1] in ZSH_NAV)]
        chapter = None
        secs = sections_of(blocks)
        for k, (i, level, title, own) in enumerate(secs):
            if level == 1:
                chapter = re.sub(r"^Chapter \d+:\s*", "", title)
                continue
            m = re.match(r"^\d+\.\d+:\s*(.+)$", title)
            if not m or chapter is None:
                continue
            end = secs[k + 1][0] if k + 1 < len(secs) else len(blocks)
            text = zsh_markdown(blocks[i + 1:end]) if end > i + 1 else ""
            if len(words(text)) >= 5:
                entries.append((path.stem.lower(), chapter, " ".join(m.group(1).split()), text))
    probe = Questions(vague_pronouns=True)
    for _, _, q, _ in entries:
        probe.add(q, "")
    reset(corpus)
    counts = collections.Counter()
    files = 0
    for name, chapter, q, text in entries:
        counts[name] += 1
        rel = f"{name}/{name}-{counts[name]:03d}.md"
        heads = ["# Z-Shell Frequently-Asked Questions", "## " + chapter]
        if not probe.usable(q):  # not asked: its heading stays
            heads.append("### " + q)
        (corpus / name).mkdir(exist_ok=True)
        (corpus / rel).write_text("\n\n".join(heads) + "\n\n" + text, encoding="utf-8")
        questions.add(q, rel)
        files += 1
    if files < 40:
        die(f"only {files} zsh FAQ entries parsed under {html_dir}")
    return files


# --- GIMP help (DocBook HTML), Korean and English --------------------------------------------

BLOCKS = {"p", "li", "dt", "dd", "pre", "tr", "caption", "blockquote", "div", "table", "ul",
          "ol", "dl", "br", "td", "th"}
SKIP_CLASSES = {"navheader", "navfooter", "toc", "list-of-figures", "list-of-tables",
                "indexterm", "mediaobject", "inlinemediaobject", "screenshot"}


class DocBookPage(html.parser.HTMLParser):
    """A DocBook HTML page as blocks: ("h", level, text) for section titles, ("p", text)."""

    HEADING_CLASS = "title"  # DocBook section titles; None: every h1-h6
    SKIP_TAGS = ("head", "script", "style")
    SKIP = SKIP_CLASSES

    def skipped(self, tag, attrs, classes):
        return tag == "a" and "indexterm" in classes

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.blocks, self.buf, self.stack = [], [], []
        self.skip = 0
        self.heading = None
        self.pre = 0
        self.top_class = None
        self.prefix = ""

    def flush(self):
        text = "".join(self.buf)
        self.buf = []
        if self.pre:
            text = text.strip("\n")
        else:
            text = " ".join(text.split())
        if text:
            self.blocks.append(("p", text, self.prefix))
            self.prefix = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = set((a.get("class") or "").split())
        if tag in ("br", "img", "hr", "meta", "link", "col", "area", "input"):
            if tag == "br":
                self.buf.append("\n" if self.pre else " ")
            return
        skipping = (self.skip or tag in self.SKIP_TAGS or classes & self.SKIP
                    or self.skipped(tag, a, classes))
        self.stack.append((tag, bool(skipping)))
        if skipping:
            self.skip += 1
            return
        if tag == "div" and self.top_class is None and classes - {"titlepage"}:
            self.top_class = sorted(classes)[0]
        if re.fullmatch(r"h[1-6]", tag) and (self.HEADING_CLASS is None
                                             or self.HEADING_CLASS in classes):
            self.flush()
            self.heading = int(tag[1])
            return
        if tag in BLOCKS or tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self.flush()
            if tag == "pre":
                self.pre += 1
            if tag == "li":
                self.prefix = "- "

    def handle_endtag(self, tag):
        if not self.stack:
            return
        # Tolerate unclosed tags: pop to the matching one.
        for k in range(len(self.stack) - 1, -1, -1):
            if self.stack[k][0] == tag:
                break
        else:
            return
        while len(self.stack) > k:
            t, skipped = self.stack.pop()
            if skipped:
                self.skip -= 1
                continue
            if self.heading is not None and re.fullmatch(r"h[1-6]", t):
                text = " ".join("".join(self.buf).split())
                self.buf = []
                self.blocks.append(("h", self.heading, text))
                self.heading = None
            elif t in BLOCKS or t in ("h1", "h2", "h3", "h4", "h5", "h6"):
                self.flush()
                if t == "pre":
                    self.pre -= 1

    def handle_data(self, data):
        if not self.skip:
            self.buf.append(data)


class LibreOfficePage(DocBookPage):
    """A LibreOffice help page (XHP rendered as HTML): its headings are plain h1-h6. The page
    frame (header, side bars, footer with debug info), text hidden for other platforms, and the
    "Related Topics" links (other pages' titles, i.e. other questions) are left out."""

    HEADING_CLASS = None
    SKIP_TAGS = ("head", "script", "style", "header", "aside", "footer", "noscript")
    SKIP = {"relatedtopics", "related", "debug"}

    def skipped(self, tag, attrs, classes):
        # A key name is written for every platform, hidden but the default one.
        hidden = "hidden" in attrs and not (attrs.get("id") or "").startswith("default")
        return hidden or (tag == "p" and "embedded" in classes)


def parse_page(path, parser=DocBookPage):
    p = parser()
    p.feed(path.read_text(encoding="utf-8", errors="replace"))
    p.close()
    p.flush()
    return p.top_class, p.blocks


def section_number(title):
    m = re.match(r"^(\d+(\.\d+)*\.?)\s", title)
    return m.group(1) if m else ""


def strip_number(title):
    """`3.1. Title`, `5장. 제목`, `부록 A. 제목`, `Chapter 5. Title` -> the title."""
    return re.sub(r"^(\d+(\.\d+)*\.?|\d+장\.|부록 [A-Z]\.|Chapter \d+\.|Appendix [A-Z]\.)\s+",
                  "", title).strip()


def sections_of(blocks):
    """[(heading_index_in_blocks, level, title, own_text)] for every heading."""
    heads = [i for i, b in enumerate(blocks) if b[0] == "h"]
    out = []
    for j, i in enumerate(heads):
        end = heads[j + 1] if j + 1 < len(heads) else len(blocks)
        own = "\n".join(b[1] for b in blocks[i + 1:end])
        out.append((i, blocks[i][1], blocks[i][2], own))
    return out


def markdown(blocks, removed):
    """The page as Markdown, without the headings at block indexes in `removed`."""
    levels = [b[1] for b in blocks if b[0] == "h"]
    base = min(levels) - 1 if levels else 0
    out = []
    for i, b in enumerate(blocks):
        if b[0] == "h":
            if i not in removed:
                out.append("#" * max(1, b[1] - base) + " " + b[2])
        elif "\n" in b[1]:
            out.append("```\n" + b[1] + "\n```")
        else:
            out.append(b[2] + b[1])
    return "\n\n".join(out) + "\n"


GIMP_PAGES = ("sect1", "sect2", "chapter", "appendix", "preface", "refentry")


def gimp(root, corpus_ko, corpus_en, questions_ko, questions_en, mapping):
    help_ko = root / "usr/share/gimp/2.0/help/ko"
    help_en = root / "usr/share/gimp/2.0/help/en"
    pages = []
    for ko in sorted(help_ko.glob("*.html")):
        en = help_en / ko.name
        if not en.exists():
            continue
        top_ko, blocks_ko = parse_page(ko)
        top_en, blocks_en = parse_page(en)
        if top_ko not in GIMP_PAGES or top_en != top_ko:
            continue
        secs_ko, secs_en = sections_of(blocks_ko), sections_of(blocks_en)
        if len(secs_ko) != len(secs_en) or any(
                section_number(a[2]) != section_number(b[2]) for a, b in zip(secs_ko, secs_en)):
            continue
        # (k, title, whether the Korean section itself is translated)
        chosen = []
        for k, (s_ko, s_en) in enumerate(zip(secs_ko, secs_en)):
            title = strip_number(s_ko[2])
            if not HANGUL.search(title) or len(words(s_en[3])) < 15:
                continue
            translated = len(words(s_ko[3])) >= 15 and hangul_share(s_ko[3]) >= 0.5
            chosen.append((k, title, translated))
        if chosen:
            pages.append((ko.name, blocks_ko, blocks_en, secs_ko, secs_en, chosen))
        if len(pages) >= MAX_PAGES:
            break
    # The generic-title rule needs every title first (counted over all sections with a Korean
    # title, so both sets drop the same titles); headings of dropped questions stay.
    probe = Questions()
    for _, _, _, _, _, chosen in pages:
        for _, title, _ in chosen:
            probe.add(title, "")
    reset(corpus_ko)
    reset(corpus_en)
    with open(mapping, "w", encoding="utf-8") as m:
        for n, (name, blocks_ko, blocks_en, secs_ko, secs_en, chosen) in enumerate(pages, 1):
            rel = f"gimp-{n:03d}.md"
            removed_ko = {secs_ko[k][0] for k, t, tr in chosen if tr and probe.usable(t)}
            removed_en = {secs_en[k][0] for k, t, _ in chosen if probe.usable(t)}
            (corpus_ko / rel).write_text(markdown(blocks_ko, removed_ko), encoding="utf-8")
            (corpus_en / rel).write_text(markdown(blocks_en, removed_en), encoding="utf-8")
            m.write(f"{rel}\t{name}\n")
            for k, title, translated in chosen:
                if translated:
                    questions_ko.add(title, rel)
                questions_en.add(title, rel)
    # A title generic in the manual is generic in the Korean set too.
    for title in list(questions_ko.by_title):
        if not probe.usable(title):
            del questions_ko.by_title[title]
    return len(pages)


def libreoffice(root, corpus_ko, corpus_en, q_ko, q_ko_en, q_en, mapping):
    """LibreOffice's task guides (text/*/guide/*.html), Korean and English: a page title is the
    question, the page (without that title; its other headings stay) the answer."""
    base = root / "usr/share/libreoffice/help"
    pages = []
    for ko in sorted((base / "ko/text").glob("*/guide/*.html")):
        rel_html = ko.relative_to(base / "ko")
        en = base / "en-US" / rel_html
        if not en.exists():
            continue
        _, blocks_ko = parse_page(ko, LibreOfficePage)
        _, blocks_en = parse_page(en, LibreOfficePage)
        secs_ko, secs_en = sections_of(blocks_ko), sections_of(blocks_en)
        # Aligned: the same headings at the same levels, the page title (h1) first.
        if (not secs_ko or len(secs_ko) != len(secs_en) or secs_ko[0][1] != 1
                or [s[1] for s in secs_ko] != [s[1] for s in secs_en]
                or sum(1 for s in secs_ko if s[1] == 1) != 1):
            continue
        body_ko = "\n".join(b[2] if b[0] == "h" else b[1] for b in blocks_ko[1:])
        body_en = "\n".join(b[2] if b[0] == "h" else b[1] for b in blocks_en[1:])
        if len(words(body_en)) < 15:
            continue
        title_ko, title_en = secs_ko[0][2], secs_en[0][2]
        translated = (HANGUL.search(title_ko) is not None and len(words(body_ko)) >= 15
                      and hangul_share(body_ko) >= 0.5)
        pages.append((rel_html, blocks_ko, blocks_en, title_ko, title_en,
                      HANGUL.search(title_ko) is not None, translated))
    print(f"libreoffice: {len(pages)} aligned guide pages", file=sys.stderr)
    if len(pages) > MAX_PAGES_LIBREOFFICE:  # evenly spaced over the modules
        n = MAX_PAGES_LIBREOFFICE
        pages = [pages[i * len(pages) // n] for i in range(n)]
    probe_ko, probe_en = Questions(), Questions()
    for _, _, _, t_ko, t_en, korean_title, _ in pages:
        probe_en.add(t_en, "")
        if korean_title:
            probe_ko.add(t_ko, "")
    reset(corpus_ko)
    reset(corpus_en)
    counts = collections.Counter()
    with open(mapping, "w", encoding="utf-8") as m:
        for rel_html, blocks_ko, blocks_en, t_ko, t_en, korean_title, translated in pages:
            module = rel_html.parts[1]
            counts[module] += 1
            rel = f"{module}/{module}-{counts[module]:03d}.md"
            ask_ko = korean_title and probe_ko.usable(t_ko)
            ask_en = probe_en.usable(t_en)
            (corpus_ko / module).mkdir(exist_ok=True)
            (corpus_en / module).mkdir(exist_ok=True)
            removed_ko = {0} if ask_ko and translated else set()
            removed_en = {0} if ask_ko or ask_en else set()
            (corpus_ko / rel).write_text(markdown(blocks_ko, removed_ko), encoding="utf-8")
            (corpus_en / rel).write_text(markdown(blocks_en, removed_en), encoding="utf-8")
            m.write(f"{rel}\t{rel_html}\n")
            if korean_title:
                q_ko_en.add(t_ko, rel)
                if translated:
                    q_ko.add(t_ko, rel)
            q_en.add(t_en, rel)
    # A title generic among all Korean titles is generic in the Korean-over-Korean set too.
    for title in list(q_ko.by_title):
        if not probe_ko.usable(title):
            del q_ko.by_title[title]
    return len(pages)


def write_plain(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for q in rows:
            f.write(json.dumps({"question": q, "sources": []}, ensure_ascii=False) + "\n")


def main():
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="/tmp/rag-eval-corpora", type=Path,
                    help="where .debs, their contents and the corpora go (not in the repo)")
    ap.add_argument("--debs", help="a folder that already holds the pinned .deb files")
    ap.add_argument("--sets-dir", default=here, type=Path, help="where the .jsonl sets go")
    ap.add_argument("--only", default=",".join(GROUPS),
                    help=f"comma-separated groups to make (default all): {', '.join(GROUPS)}")
    args = ap.parse_args()
    groups = [g for g in args.only.split(",") if g]
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        die(f"--only: unknown group(s) {', '.join(unknown)}; known: {', '.join(GROUPS)}")
    out = args.out.resolve()
    repo = here.parent.parent
    if out == repo or repo in out.parents:
        die(f"--out {out} is inside the repository; corpora are not shipped")
    out.mkdir(parents=True, exist_ok=True)
    debs = fetch_debs(out / "debs", args.debs, {p for g in groups for p in GROUPS[g]})
    root = out / "root"
    extract(debs, root)

    sets = args.sets_dir
    counts = {}
    if "python-faq" in groups:
        py = Questions()
        n_py = python_faq(root, out / "python-faq", py)
        counts["python-faq"] = (n_py, py.write(sets / "python-faq.jsonl"))
    if "git-faq" in groups:
        git = Questions()
        n_git = git_faq(root, out / "git-faq", git)
        counts["git-faq"] = (n_git, git.write(sets / "git-faq.jsonl"))
    if "gimp" in groups:
        ko, ko_en = Questions(), Questions()
        n_gimp = gimp(root, out / "gimp-ko", out / "gimp-en", ko, ko_en, out / "gimp-pages.tsv")
        counts["gimp-ko"] = (n_gimp, ko.write(sets / "gimp-ko.jsonl"))
        counts["gimp-ko-en"] = (n_gimp, ko_en.write(sets / "gimp-ko-en.jsonl"))
    if "libreoffice" in groups:
        lo_ko, lo_ko_en, lo_en = Questions(), Questions(), Questions()
        n_lo = libreoffice(root, out / "libreoffice-ko", out / "libreoffice-en", lo_ko, lo_ko_en,
                           lo_en, out / "libreoffice-pages.tsv")
        counts["libreoffice-en"] = (n_lo, lo_en.write(sets / "libreoffice-en.jsonl"))
        counts["libreoffice-ko"] = (n_lo, lo_ko.write(sets / "libreoffice-ko.jsonl"))
        counts["libreoffice-ko-en"] = (n_lo, lo_ko_en.write(sets / "libreoffice-ko-en.jsonl"))
    if "perl-faq" in groups:
        perl = Questions(vague_pronouns=True)
        n_perl = perl_faq(root, out / "perl-faq", perl)
        counts["perl-faq"] = (n_perl, perl.write(sets / "perl-faq.jsonl"))
    if "zsh-faq" in groups:
        zsh = Questions(vague_pronouns=True)
        n_zsh = zsh_faq(root, out / "zsh-faq", zsh)
        counts["zsh-faq"] = (n_zsh, zsh.write(sets / "zsh-faq.jsonl"))
    write_plain(sets / "out-of-corpus-en.jsonl", OUT_OF_CORPUS_EN)
    write_plain(sets / "out-of-corpus-ko.jsonl", OUT_OF_CORPUS_KO)
    corpus = {"python-faq": "python-faq", "git-faq": "git-faq", "gimp-ko": "gimp-ko",
              "gimp-ko-en": "gimp-en", "libreoffice-en": "libreoffice-en",
              "libreoffice-ko": "libreoffice-ko", "libreoffice-ko-en": "libreoffice-en", "perl-faq": "perl-faq",
              "zsh-faq": "zsh-faq"}
    for name, (files, questions) in counts.items():
        print(f"{name}: {questions} questions over {files} files in {out / corpus[name]}")
    print(f"out-of-corpus-en: {len(OUT_OF_CORPUS_EN)}, out-of-corpus-ko: {len(OUT_OF_CORPUS_KO)}")


if __name__ == "__main__":
    main()
