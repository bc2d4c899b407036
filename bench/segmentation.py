"""Compare sentence splitters for news text: quality against gold sentences, and speed.

    .venv/bin/python bench/segmentation.py [--mb 5] [--only NAME ...] [--errors]

Install the libraries to measure them: ``.venv/bin/pip install pysbd syntok blingfire``.
Splitters:

* ``regex (old)``        the rule-based splitter ``framing/labelling.py`` had before
                         ``framing.segment`` (kept verbatim below so the baseline stays measurable);
* ``pysbd``, ``syntok``, ``blingfire``: each library as shipped, on the whole text, with its own
                         offsets (each span runs to the next sentence's start, stripped);
* ``rules only``         ``framing.segment``'s blocks and post-rules with no library (its fallback);
* ``<lib> + rules``      the library inside ``framing.segment``'s blocks and post-rules (blank
                         lines, bullet lines, joins after abbreviations, breaks after lower-case
                         words); ``blingfire + rules`` is ``framing.segment.split_sentences``;
* ``framing.segment``    whatever ``from framing.segment import split_sentences`` gives now.

Data: (a) the seed document ``seeds/documents/001_eedc8a1d2973616a.txt`` with its 14 gold spans
(``start``/``end`` in ``seeds/corpus/seed.jsonl``); (b) ``PASSAGES``: short news-like passages
written for this benchmark with their gold sentences; ``HELD_OUT``: more of them, never used to
tune the post-rules; (c) the project's annotated corpus (``seeds/corpus/written``) rebuilt as
documents. No text comes from any evaluation file.

Reported per splitter: boundary precision / recall / F1 (a boundary is the start offset of every
sentence but the first), passages split exactly right, the seed's gold spans reproduced exactly
(and whether the whole list is), and speed in gold sentences/s and MB/s on ~5 MB of documents
made by repeating the passages and the seed document, one ``split`` call per document, one
process. Prints figures only; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SEED_TXT = ROOT / "seeds" / "documents" / "001_eedc8a1d2973616a.txt"
SEED_JSONL = ROOT / "seeds" / "corpus" / "seed.jsonl"

# Each passage is its list of gold sentences. The whitespace a sentence ends with is the
# separator written after it (a single space when there is none): "\n\n" is a blank line.
PASSAGES: list[list[str]] = [
    # abbreviations: Mr., Dr., U.S., U.N., No., Gen., Col., Feb., Sen., Rep., St., Inc., Ltd., p.
    ["Mr. Okafor told reporters on Tuesday that the detainees had been moved to another site.",
     "Dr. Hana Rossi, who led the inquiry, disputed that account."],
    ["The U.S. State Department said it was reviewing the U.N. findings.",
     "A spokesperson declined to give a timeline."],
    ["The mining company is registered in the U.S.",
     "It employs about 4,000 people in the province."],
    ["Prisoners were held in Camp No. 4 near the border, according to the report.",
     "The camp was closed in 2019, officials said."],
    ["Gen. Tomas Ibarra denied that troops had fired on the crowd.",
     "Col. Ruth Mensah said an investigation was under way."],
    ["The ministry issued its statement on Feb. 14, two days after the protests.",
     "It did not address the allegations directly."],
    ["Sen. Maria Alvarez and Rep. John Park visited St. Petersburg last week.",
     "They met opposition figures and a group of lawyers."],
    ["Shares of Northwind Inc. fell sharply after the report was published.",
     "Its supplier, Delta Textiles Ltd., said it would cooperate with auditors."],
    # initials
    ["The petition was drafted by J. R. Okonkwo and signed by 300 residents.",
     "Lawyer M. Chen said the evictions were unlawful."],
    # decimal numbers, percentages
    ["Output fell 2.5 percent in the third quarter, the statistics agency said.",
     "Wages rose by 0.8% over the same period, far below inflation of 6.1%."],
    ["The clashes killed 14 people.",
     "12 of them were civilians, the health ministry said."],
    # quotes spanning sentences
    ["“We have never used forced labour,” the company said.",
     "“Our suppliers are audited every year.”"],
    ["“The camps are schools.",
     "Nobody is held there against their will,” the regional governor said on Monday."],
    ["“Where are our sons?” one mother asked outside the court.",
     "Police dispersed the crowd an hour later."],
    ["Liu said the term ‘forced labour’ was “a lie invented by anti-China forces.”",
     "He offered no evidence for the claim."],
    ["Why were the monitors expelled?",
     "Officials would not say.",
     "“Shame on you!” protesters shouted as the minister left the building."],
    # datelines
    ["GENEVA (Reuters) - U.N. human rights experts on Friday accused the government of arbitrary detentions.",
     "The government rejected the accusation as politically motivated."],
    ["(TibetanReview.net, Mar03’24) – Authorities in Lhasa have detained two monks for sharing photos online, a rights group said.",
     "The group said both men remain missing."],
    ["WASHINGTON, March 5 — The Senate voted 62-38 on Thursday to extend the sanctions.",
     "The White House welcomed the vote."],
    # headlines / titles without final punctuation, followed by a blank line
    ["Rights group accuses army of burning villages\n\n",
     "The army burned at least 12 villages in the north last month, a rights group said in a report on Wednesday.",
     "The army denied the report."],
    ["Ministry rejects forced labour claims\n\n",
     "By Sarah Lind\n\n",
     "BEIJING — The foreign ministry on Monday dismissed a report on forced labour as “lies.”",
     "It said the programmes were voluntary."],
    # bullet-like and numbered lines
    ["The report makes three findings:\n",
     "• Workers were transferred without their consent.\n",
     "• Passports were confiscated on arrival.\n",
     "• Wages were withheld for months."],
    ["Key points\n",
     "- Three journalists were detained\n",
     "- Their lawyers were denied access\n",
     "- The court hearing was postponed"],
    ["The committee asked the government to:\n",
     "1. Release the detained activists.\n",
     "2. Allow independent monitors into the region.\n",
     "3. Report back within six months."],
    # ellipses
    ["The talks dragged on for hours...",
     "Negotiators finally emerged after midnight."],
    ["He said the deal was … complicated, and declined to elaborate.",
     "Officials did not respond."],
    ["Witnesses described gunfire, screams, smoke…",
     "Then silence, one resident said."],
    # parentheses
    ["The company did not respond to requests for comment.",
     "(Its parent firm has previously denied any wrongdoing.)",
     "Shares fell 3% on the news."],
    ["The International Labour Organization (ILO) and the U.N. Human Rights Office (OHCHR) issued a joint statement.",
     "It called for an independent investigation (see annex, p. 12) into the deaths."],
    ["The hearing will resume on Tuesday.\n\n",
     "(Reporting by Anna Weiss; Editing by Tom Hale)"],
    # times
    ["The curfew begins at 9 p.m. and ends at 6 a.m. local time.",
     "Violators face arrest, police said."],
    ["The explosion happened shortly after 4 a.m.",
     "No group has claimed responsibility for the attack."],
    # hard-wrapped lines, odd spacing, web addresses
    ["The minister said the allegations were\nfabricated by hostile foreign media and\nhad no basis in fact.",
     "She did not take questions."],
    ["Troops withdrew from the town on Sunday.   ",
     "Residents began returning on Monday.\t",
     "Aid agencies said the roads were still mined."],
    ["The full report is available at www.example.org/reports/2024.",
     "Questions can be sent to press@example.org."],
]


# Written after framing.segment's post-rules had been derived from PASSAGES and never used to
# tune them: a check that the rules are not just fitted to PASSAGES.
HELD_OUT: list[list[str]] = [
    ["Ms. Adeyemi, a former U.N. envoy, said the vote was rigged.",
     "Her office later issued a correction."],
    ["Prof. Karl Weber of the University of Vienna reviewed the satellite images.",
     "He found evidence of at least three new buildings."],
    ["The budget for 2025 is 1.25 billion dollars, up from 0.9 billion.",
     "Critics said the increase was too small."],
    ["“I was beaten every night,” said a former detainee who asked not to be named.",
     "“They wanted me to confess.”",
     "The prison authority did not comment."],
    ["KYIV, June 2 (AP) — Drones struck an energy facility overnight, officials said.",
     "Power was restored by morning."],
    ["Families demand answers over missing fishermen\n\n",
     "Relatives of 23 fishermen who vanished off the coast gathered outside the ministry on Friday."],
    ["Among the demands:\n",
     "* an independent inquiry\n",
     "* compensation for the families\n",
     "* the release of all detained relatives"],
    ["The spokesman paused... then repeated that no one had been harmed.",
     "Reporters pressed him for details."],
    ["Mrs. Dlamini testified for two hours (her lawyer was not present).",
     "The judge adjourned the case until Sept. 9."],
    ["Lt. Gen. Omar Haddad said the strikes targeted only military sites.",
     "Satellite images suggest otherwise."],
    ["The decision was published in Vol. 3 of the official gazette.",
     "It takes effect immediately."],
    ["An aid convoy reached the town at 11:30 a.m. on Saturday.",
     "It carried food for 5,000 people."],
    ["Is the government listening?",
     "Activists say it is not."],
    ["The firm, Acme Corp., denied the claims.",
     "It said all its factories were inspected by an outside auditor in Oct. 2023."],
    ["The U.K. and the E.U. issued a joint statement on Tuesday.",
     "Both called for restraint."],
    ["Earlier, she wrote on X: “We will not be silenced.”",
     "Her account was suspended hours later."],
]


def build(sentences: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """The passage text and its gold spans."""
    text, spans = "", []
    for k, raw in enumerate(sentences):
        body = raw.rstrip()
        sep = raw[len(body):] or " "
        spans.append((len(text), len(text) + len(body)))
        text += body + (sep if k < len(sentences) - 1 else "")
    return text, spans


def corpus_documents() -> list[tuple[str, list[tuple[int, int]]]]:
    """The project's annotated corpus (seeds/corpus/written/*.jsonl), rebuilt as documents: each
    doc_id's sentences in order, joined by a space, or by a blank line after a sentence without
    final punctuation (a heading). Read at run time; no text is copied here."""
    docs: dict[str, list[str]] = {}
    for f in sorted((ROOT / "seeds" / "corpus" / "written").glob("*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            if line.strip():
                r = json.loads(line)
                docs.setdefault(r["doc_id"], []).append(r["text"].strip())
    out = []
    for sents in docs.values():
        out.append(build([t if re.search(r"[.!?…\"'”’)]$", t) else t + "\n\n" for t in sents]))
    return out


def seed_gold() -> tuple[str, list[tuple[int, int]]]:
    text = SEED_TXT.read_text(encoding="utf-8")
    spans = [(r["start"], r["end"]) for r in map(json.loads, SEED_JSONL.read_text(encoding="utf-8").splitlines())
             if r.get("doc_id") == "001_eedc8a1d2973616a"]
    return text, sorted(spans)


# --- splitters ---------------------------------------------------------------------------------

# The regex splitter of framing/labelling.py before framing.segment replaced it (verbatim).
_ABBREV = {
    "mr", "mrs", "ms", "dr", "prof", "gen", "col", "lt", "sgt", "capt", "gov", "sen", "rep", "st", "jr", "sr",
    "no", "vs", "etc", "e.g", "i.e", "inc", "ltd", "co", "corp", "dept", "approx", "fig", "art", "para",
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "u.s", "u.n", "u.k",
}
_BOUNDARY = re.compile(r"""[.!?]+["'”’)\]]*(?=\s+["'“‘(\[]?[A-Z0-9])""")


def regex_old(text: str) -> list[tuple[int, int]]:
    spans = []
    for para in re.finditer(r"\S(?:.*?\S)?(?=\s*\n\s*\n|\s*$)", text, flags=re.S):
        lo = para.start()
        body = para.group()
        cut = 0
        for m in _BOUNDARY.finditer(body):
            word = re.search(r"(\S+)$", body[cut:m.start() + 1])
            token = word.group(1).rstrip(".!?").lower() if word else ""
            if body[m.start()] == "." and (token in _ABBREV or re.fullmatch(r"[a-z]", token)):
                continue
            spans.append((lo + cut, lo + m.end()))
            cut = m.end()
            while cut < len(body) and body[cut].isspace():
                cut += 1
        if cut < len(body):
            spans.append((lo + cut, lo + len(body)))
    return [(s, e) for s, e in spans if text[s:e].strip()]


def pysbd_starts():
    import pysbd

    seg = pysbd.Segmenter(language="en", clean=False, char_span=True)
    return lambda text: [t.start for t in seg.segment(text)] if text.strip() else []


def syntok_starts():
    from syntok import segmenter

    return lambda text: [sent[0].offset for para in segmenter.analyze(text) for sent in para if sent]


def blingfire_starts():
    import blingfire

    return lambda text: [s for s, _ in blingfire.text_to_sentences_and_offsets(text)[1]] if text.strip() else []


def raw(make_starts):
    """A library as shipped, on the whole text, its native offsets."""
    def make():
        from framing.segment import spans_from_starts

        starts = make_starts()
        return lambda text: spans_from_starts(text, starts(text))
    return make


def with_rules(make_starts):
    """A library inside framing.segment's blocks and post-rules."""
    def make():
        from framing.segment import segment

        starts = make_starts()
        return lambda text: segment(text, starts)
    return make


def splitters() -> dict:
    out = {"regex (old)": lambda: regex_old}
    libs = {"pysbd": pysbd_starts, "syntok": syntok_starts, "blingfire": blingfire_starts}
    for lib, make_starts in libs.items():
        out[lib] = raw(make_starts)
    out["rules only"] = with_rules(lambda: lambda text: [0])
    out["pysbd + rules"] = with_rules(pysbd_starts)
    out["syntok + rules"] = with_rules(syntok_starts)

    def blingfire_aligned():  # framing.segment's own BlingFire core (sentences re-aligned to the text)
        from framing.segment import _blingfire_starts
        return _blingfire_starts
    out["blingfire + rules"] = with_rules(blingfire_aligned)

    def current():
        from framing.segment import split_sentences
        return split_sentences
    out["framing.segment"] = current
    return out


# --- measurement -------------------------------------------------------------------------------

def boundaries(spans):
    return {s for s, _ in spans[1:]}


def prf(split, passages):
    tp = fp = fn = exact = 0
    errors = []
    for text, gold in passages:
        pred = split(text)
        g, p = boundaries(gold), boundaries(pred)
        tp += len(g & p)
        fp += len(p - g)
        fn += len(g - p)
        if pred == gold:
            exact += 1
        else:
            errors.append([text[s:e] for s, e in pred])
    prec = tp / (tp + fp) if tp + fp else 1.0
    rec = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return prec, rec, f1, exact, errors


def quality(split, passages, held_out, corpus_docs, seed):
    p, r, f1, exact, errors = prf(split, passages)
    *_, f1_held, exact_held, errors_held = prf(split, held_out)
    cp, cr, cf1, *_ = prf(split, corpus_docs) if corpus_docs else (0, 0, 0)
    seed_text, seed_spans = seed
    pred = split(seed_text)
    return dict(p=p, r=r, f1=f1, exact=exact, errors=errors, f1_held=f1_held, exact_held=exact_held,
                errors_held=errors_held, cp=cp, cr=cr, cf1=cf1, seed_hit=len(set(pred) & set(seed_spans)), seed_n=len(pred),
                seed_ok=pred == seed_spans)


def speed_corpus(passages, seed, mb: float):
    docs = [t for t, _ in passages] + [seed[0]]
    n_gold = [len(g) for _, g in passages] + [len(seed[1])]
    corpus, sents, size = [], 0, 0
    while size < mb * 1_000_000:
        for d, n in zip(docs, n_gold):
            corpus.append(d)
            sents += n
            size += len(d.encode("utf-8"))
    return corpus, sents, size


def speed(split, corpus, sents, size, budget_s: float):
    """Sentences/s and MB/s over the corpus; a slow splitter stops after budget_s (rate extrapolated)."""
    done_docs, t0 = 0, time.perf_counter()
    for d in corpus:
        split(d)
        done_docs += 1
        if done_docs % 64 == 0 and time.perf_counter() - t0 > budget_s:
            break
    dt = time.perf_counter() - t0
    frac = done_docs / len(corpus)
    return sents * frac / dt, size * frac / dt / 1e6, frac


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=float, default=5.0, help="size of the speed corpus (default 5 MB)")
    ap.add_argument("--budget", type=float, default=120.0,
                    help="seconds a splitter may spend on the speed corpus before its rate is extrapolated")
    ap.add_argument("--only", nargs="*", help="measure only these splitters")
    ap.add_argument("--errors", action="store_true", help="print each splitter's wrong passages")
    args = ap.parse_args(argv)

    passages = [build(p) for p in PASSAGES]
    held_out = [build(p) for p in HELD_OUT]
    corpus_docs = corpus_documents()
    seed = seed_gold()
    corpus, sents, size = speed_corpus(passages, seed, args.mb)
    print(f"passages: {len(passages)}, {sum(len(g) for _, g in passages)} gold sentences, "
          f"{sum(len(g) - 1 for _, g in passages)} boundaries; held-out: {len(held_out)}, "
          f"{sum(len(g) - 1 for _, g in held_out)} boundaries; seed: {len(seed[1])} gold spans; "
          f"corpus: {len(corpus_docs)} documents, {sum(len(g) - 1 for _, g in corpus_docs):,} boundaries")
    print(f"speed corpus: {len(corpus)} documents (passages and seed repeated), {size / 1e6:.1f} MB, "
          f"{sents:,} gold sentences; one process, {os.cpu_count()} CPUs")
    print()
    head = (f"{'splitter':<18} {'P':>6} {'R':>6} {'F1':>6} {'exact':>6} {'held F1':>8} {'exact':>6} "
            f"{'corpus P':>8} {'R':>6} {'F1':>6} {'seed spans':>11} {'seed ok':>7} {'sent/s':>9} {'MB/s':>6}")
    print(head)
    print("-" * len(head))
    rows = []
    for name, make in splitters().items():
        if args.only and name not in args.only:
            continue
        try:
            split = make()
        except ImportError as e:
            print(f"{name:<18} not installed ({e.name})")
            continue
        q = quality(split, passages, held_out, corpus_docs, seed)
        sps, mbs, frac = speed(split, corpus, sents, size, args.budget)
        note = "" if frac >= 1 else f"  (rate from {frac:.0%} of the corpus)"
        print(f"{name:<18} {q['p']:>6.3f} {q['r']:>6.3f} {q['f1']:>6.3f} {q['exact']:>3}/{len(passages):<2} "
              f"{q['f1_held']:>8.3f} {q['exact_held']:>3}/{len(held_out):<2} "
              f"{q['cp']:>8.3f} {q['cr']:>6.3f} {q['cf1']:>6.3f} "
              f"{q['seed_hit']:>4}/{len(seed[1])} ({q['seed_n']:>2}) {'yes' if q['seed_ok'] else 'no':>7} "
              f"{sps:>9,.0f} {mbs:>6.2f}{note}", flush=True)
        rows.append((name, q))
    print("\nP/R/F1: sentence boundaries over PASSAGES; exact: passages split exactly right; held F1/exact: the "
          "same on HELD_OUT; corpus: boundaries in the rebuilt corpus documents; seed spans: gold spans reproduced exactly (spans returned); seed ok: the 14 and "
          "nothing else; sent/s: gold sentences per second.")
    if args.errors:
        for name, q in rows:
            wrong = q["errors"] + q["errors_held"]
            print(f"\n== {name}: {len(wrong)} passages wrong")
            for sents_ in wrong:
                print("  " + " ‖ ".join(s.replace("\n", "⏎") for s in sents_))
    return 0

if __name__ == "__main__":
    sys.exit(main())
