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


def nullable(node):
    """OpenAI's description marks optional-null values with OpenAPI 3.0's `nullable: true`,
    which JSON Schema does not know: rewrite it as JSON Schema says it."""
    if isinstance(node, list):
        return [nullable(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: nullable(v) for k, v in node.items()}
    if node.pop("nullable", False) is True:
        if isinstance(node.get("type"), str) and "$ref" not in node:
            node["type"] = [node["type"], "null"]
            if "enum" in node:
                node["enum"] = list(node["enum"]) + [None]
        else:
            node = {"anyOf": [node, {"type": "null"}]}
    return node


spec = nullable(spec)

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
