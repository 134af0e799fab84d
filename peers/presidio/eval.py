"""Presidio side by side with `rempart-privacy`'s recognizers, on the same inputs.

Accuracy: Presidio's synthetic PII data set, scored exactly as
`crates/rempart-privacy/examples/presidio_eval.rs` scores Rempart (a prediction is correct when
it overlaps a labelled span of its type; a labelled span is found when a prediction of its type
overlaps it). Throughput: every string value of the NDJSON lines given (`--ndjson FILE`, first
`--lines N`), analyzed one by one, as a redactor would.

Presidio runs with its pattern recognizers over a blank spaCy English pipeline (tokenizer only):
the registries serve no trained spaCy model, so its NER-based types (PERSON, LOCATION, …) find
nothing here and are not compared.

    python3 -m venv /tmp/pvenv && /tmp/pvenv/bin/pip install presidio-analyzer
    /tmp/pvenv/bin/python peers/presidio/eval.py [--ndjson /tmp/otrf.ndjson --lines 300]
"""

import argparse
import gzip
import json
import os
import sys
import tempfile
import time

import spacy
from presidio_analyzer import AnalyzerEngine
from presidio_analyzer.nlp_engine import NlpEngineProvider

TYPES = ["CREDIT_CARD", "EMAIL_ADDRESS", "IBAN_CODE", "IP_ADDRESS", "PHONE_NUMBER"]


def engine():
    blank = os.path.join(tempfile.mkdtemp(), "blank_en")
    spacy.blank("en").to_disk(blank)
    provider = NlpEngineProvider(
        nlp_configuration={"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": blank}]}
    )
    return AnalyzerEngine(nlp_engine=provider.create_engine())


def accuracy(eng, path):
    with gzip.open(path, "rt") as f:
        samples = json.load(f)
    scores = {t: [0, 0, 0, 0] for t in TYPES}  # gold, found, predicted, correct
    nbytes = 0
    started = time.perf_counter()
    for s in samples:
        text = s["full_text"]
        nbytes += len(text.encode())
        results = eng.analyze(text=text, language="en", entities=TYPES)
        for t in TYPES:
            gold = [(sp["start_position"], sp["end_position"]) for sp in s["spans"] if sp["entity_type"] == t]
            pred = [(r.start, r.end) for r in results if r.entity_type == t]
            ov = lambda a, b: a[0] < b[1] and b[0] < a[1]
            sc = scores[t]
            sc[0] += len(gold)
            sc[1] += sum(1 for g in gold if any(ov(g, p) for p in pred))
            sc[2] += len(pred)
            sc[3] += sum(1 for p in pred if any(ov(g, p) for g in gold))
    seconds = time.perf_counter() - started
    for t, (g, f, p, c) in scores.items():
        r = f / g if g else float("nan")
        pr = c / p if p else float("nan")
        print(f"{t:<14} gold {g:>4}  recall {r:.3}  predicted {p:>4}  precision {pr:.3}")
    print(f"{len(samples)} samples, {nbytes} bytes in {seconds:.2f} s ({nbytes / seconds / 1e3:.1f} kB/s)")


def strings(v):
    if isinstance(v, str):
        yield v
    elif isinstance(v, dict):
        for x in v.values():
            yield from strings(x)
    elif isinstance(v, list):
        for x in v:
            yield from strings(x)


def throughput(eng, path, lines):
    texts = []
    nbytes = 0
    with open(path, "rb") as f:
        for i, line in enumerate(f):
            if i >= lines:
                break
            nbytes += len(line)
            texts.extend(strings(json.loads(line)))
    started = time.perf_counter()
    for t in texts:
        eng.analyze(text=t, language="en")
    seconds = time.perf_counter() - started
    print(f"{lines} NDJSON lines, {nbytes} bytes, {len(texts)} strings in {seconds:.2f} s "
          f"({nbytes / seconds / 1e3:.1f} kB/s)")


def main():
    a = argparse.ArgumentParser()
    data = os.environ.get("REMPART_DATA", os.path.join(os.path.dirname(__file__), "../../../shared/data"))
    a.add_argument("--dataset", default=os.path.join(data, "pii/presidio_synth_dataset_v2.json.gz"))
    a.add_argument("--ndjson")
    a.add_argument("--lines", type=int, default=300)
    args = a.parse_args()
    eng = engine()
    accuracy(eng, args.dataset)
    if args.ndjson:
        throughput(eng, args.ndjson, args.lines)


if __name__ == "__main__":
    sys.exit(main())
