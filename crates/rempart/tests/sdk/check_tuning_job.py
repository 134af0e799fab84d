"""Reads a tuning job's data as the training tools do.

Hugging Face `datasets` loads every JSONL file of the job (as TRL's and Axolotl's loaders do);
TRL's own data utilities must find the chat examples conversational and the TRL preference
pairs conversational preference data with an explicit prompt; OpenAI's preference format must
hold one input conversation and one preferred and one non-preferred assistant answer. Exits
non-zero, naming the file and line, on the first example a tool would refuse.

Usage: check_tuning_job.py JOB_DIR
"""

import json
import os
import sys

from datasets import load_dataset
from trl.data_utils import is_conversational

SPLITS = ("train", "validation", "test")


def fail(path, n, why):
    sys.exit(f"{path} line {n + 1}: {why}")


def chat(path, n, messages, final="assistant"):
    if not messages or not all(isinstance(m, dict) and set(m) == {"role", "content"} for m in messages):
        fail(path, n, "messages are not role / content pairs")
    roles = [m["role"] for m in messages]
    if roles[-1] != final or any(r not in ("system", "user", "assistant") for r in roles):
        fail(path, n, f"roles {roles}")
    if not all(isinstance(m["content"], str) and m["content"] for m in messages):
        fail(path, n, "an empty or non-text content")


def main(job):
    counts = {}
    for kind in ("sft", "preference", "preference-trl"):
        for split in SPLITS:
            path = os.path.join(job, "data", kind, split + ".jsonl")
            if os.path.getsize(path) == 0:
                counts[f"{kind}/{split}"] = 0
                continue
            ds = load_dataset("json", data_files=path, split="train")
            for n, ex in enumerate(ds):
                if kind == "sft":
                    if not is_conversational(ex):
                        fail(path, n, "TRL does not read it as a conversation")
                    chat(path, n, ex["messages"])
                elif kind == "preference-trl":
                    if set(ex) != {"prompt", "chosen", "rejected"} or not is_conversational(ex):
                        fail(path, n, "TRL does not read it as conversational preference data")
                    chat(path, n, ex["prompt"], final="user")
                    chat(path, n, ex["chosen"])
                    chat(path, n, ex["rejected"])
                    if ex["chosen"] == ex["rejected"]:
                        fail(path, n, "the chosen and rejected answers are the same")
                else:
                    if set(ex) != {"input", "preferred_output", "non_preferred_output"}:
                        fail(path, n, f"keys {sorted(ex)}")
                    chat(path, n, ex["input"]["messages"], final="user")
                    for key in ("preferred_output", "non_preferred_output"):
                        if len(ex[key]) != 1:
                            fail(path, n, f"{key} holds {len(ex[key])} answers")
                        chat(path, n, ex[key])
            counts[f"{kind}/{split}"] = len(ds)
    print(json.dumps(counts))


if __name__ == "__main__":
    main(sys.argv[1])
