import json
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from framing.segment import split_sentences

ROOT = Path(__file__).resolve().parent.parent
SEED_TXT = ROOT / "seeds" / "documents" / "001_eedc8a1d2973616a.txt"
SEED_JSONL = ROOT / "seeds" / "corpus" / "seed.jsonl"


def sentences(text):
    return [text[s:e] for s, e in split_sentences(text)]


def test_seed_document_splits_into_the_14_gold_spans():
    text = SEED_TXT.read_text(encoding="utf-8")
    rows = [json.loads(line) for line in SEED_JSONL.read_text(encoding="utf-8").splitlines() if line.strip()]
    gold = sorted((r["start"], r["end"]) for r in rows if r["doc_id"] == "001_eedc8a1d2973616a")
    assert len(gold) == 14
    assert split_sentences(text) == gold


@pytest.mark.parametrize("sents", [
    # abbreviations and initials
    ["Mr. Okafor told reporters on Tuesday that the detainees had been moved to another site.",
     "Dr. Hana Rossi, who led the inquiry, disputed that account."],
    ["The U.S. State Department said it was reviewing the U.N. findings.", "A spokesperson declined to comment."],
    ["The mining company is registered in the U.S.", "It employs about 4,000 people in the province."],
    ["Prisoners were held in Camp No. 4 near the border.", "The camp was closed in 2019, officials said."],
    ["Gen. Tomas Ibarra denied that troops had fired on the crowd.",
     "Col. Ruth Mensah said an investigation was under way."],
    ["The ministry issued its statement on Feb. 14, two days after the protests.", "It did not address the claims."],
    ["The petition was drafted by J. R. Okonkwo and signed by 300 residents.", "Lawyer M. Chen called it unlawful."],
    ["Output fell 2.5 percent in the third quarter.", "12 of the 40 factories closed, the agency said."],
    ["It called for an investigation (see annex, p. 12) into the deaths.", "The ministry did not reply."],
    ["The explosion happened shortly after 4 a.m.", "No group has claimed responsibility."],
    # quotes spanning sentences
    ["“We have never used forced labour,” the company said.", "“Our suppliers are audited every year.”"],
    ["“The camps are schools.", "Nobody is held there against their will,” the governor said on Monday."],
    ["“Where are our sons?” one mother asked outside the court.", "Police dispersed the crowd an hour later."],
    ["Liu said the term ‘forced labour’ was “a lie invented by hostile forces.”", "He offered no evidence."],
    # datelines
    ["GENEVA (Reuters) - U.N. experts on Friday accused the government of arbitrary detentions.",
     "The government rejected the accusation."],
    ["(TibetanReview.net, Feb14’25) – Authorities in Lhasa have detained two monks, a rights group said.",
     "The group said both men remain missing."],
    ["WASHINGTON, March 5 — The Senate voted 62-38 on Thursday to extend the sanctions.", "The White House welcomed it."],
    # ellipses, parentheses
    ["The talks dragged on for hours...", "Negotiators finally emerged after midnight."],
    ["He said the deal was … complicated, and declined to elaborate.", "Officials did not respond."],
    ["The company did not respond to requests for comment.", "(Its parent firm has denied any wrongdoing.)",
     "Shares fell 3% on the news."],
])
def test_news_cases(sents):
    text = " ".join(sents)
    assert sentences(text) == sents


def test_headline_blank_line_bullets_and_wrapped_lines():
    text = ("Rights group accuses army of burning villages\n\n"
            "The army burned 12 villages, a rights group said.\nThe army denied the report.\n\n"
            "The report makes two findings:\n• Workers were moved without consent.\n• Wages were withheld\n"
            "1. Release the detained activists.\n2. Allow monitors into the region.\n\n"
            "The minister said the allegations were\nfabricated and had no basis in fact.  She left.")
    assert sentences(text) == [
        "Rights group accuses army of burning villages",
        "The army burned 12 villages, a rights group said.",
        "The army denied the report.",
        "The report makes two findings:",
        "• Workers were moved without consent.",
        "• Wages were withheld",
        "1. Release the detained activists.",
        "2. Allow monitors into the region.",
        "The minister said the allegations were\nfabricated and had no basis in fact.",
        "She left.",
    ]


@pytest.mark.parametrize("text", ["", " ", "\n\n \t\r\n", "\u3000\u2028"])
def test_empty_and_whitespace_only(text):
    assert split_sentences(text) == []


def test_offsets_survive_characters_the_library_drops_or_rejects():
    text = "a\x00b said. The \x01\x02 end. Lone \ud800 surrogate. Last one."
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == ["a\x00b said.", "The \x01\x02 end.", "Lone \ud800 surrogate.", "Last one."]


_ALPHABET = st.one_of(
    st.characters(),  # any code point
    st.sampled_from(list(" \n\n\t\r\u00a0\u2028\u3000\x00\x01\x1c\ud800\udfff" ".!?…\"'“”‘’()[]-–—•*:;,")
                    + ["...", "Mr.", "U.S.", "1.", "\n\n", "    ", "\r\n"]),
    st.sampled_from(["The", "end", "a", "Dr", "No", "12", "3.5", "p", "x"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_ALPHABET, max_size=60).map("".join))
def test_spans_are_stripped_sorted_and_lose_nothing(text):
    spans = split_sentences(text)
    covered = bytearray(len(text))
    prev_end = 0
    for s, e in spans:
        assert prev_end <= s < e <= len(text)
        piece = text[s:e]
        assert piece and piece == piece.strip()
        covered[s:e] = b"\x01" * (e - s)
        prev_end = e
    assert all(covered[i] or c.isspace() for i, c in enumerate(text))
