"""Validates JSON documents against schemas of OpenAI's OpenAPI description.

Usage: openapi_check.py SPEC.yaml.gz < checks.ndjson, each line {"schema": NAME, "instance": ...,
"what": LABEL}. Prints every violation with its label and exits 1 if there is any.
"""

import gzip
import json
import sys

import jsonschema
import yaml

with gzip.open(sys.argv[1]) as f:
    spec = yaml.safe_load(f)

validators = {}
failures = 0
checked = 0
for line in sys.stdin:
    check = json.loads(line)
    name = check["schema"]
    if name not in validators:
        root = dict(spec)
        root["$ref"] = "#/components/schemas/" + name
        validators[name] = jsonschema.Draft202012Validator(root)
    checked += 1
    for error in validators[name].iter_errors(check["instance"]):
        failures += 1
        path = "/".join(str(p) for p in error.absolute_path)
        print(f"{check.get('what', name)}: {name} at /{path}: {error.message}")
print(f"checked {checked} documents, {failures} violations", file=sys.stderr)
sys.exit(1 if failures else 0)
