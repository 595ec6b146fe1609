#!/usr/bin/python3
"""openapi-json.py SPEC.yaml OUT.json: the API contract as JSON, for /api/openapi.json and the
reference page at /docs/, written at install or stack start from docs/openapi.yaml (the one
source; nothing generated is committed). Refuses YAML that is not plain JSON data (a date, say)."""
import json
import sys

import yaml


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: openapi-json.py SPEC.yaml OUT.json")
    with open(sys.argv[1], "rb") as f:
        spec = yaml.safe_load(f)
    text = json.dumps(spec, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        f.write(text)


if __name__ == "__main__":
    main()
