#!/usr/bin/env python3
"""Validates manifest files against Protocol/manifest.schema.json with Python's jsonschema.

    schema_check.py SCHEMA [MANIFEST_JSON ...]

Checks that SCHEMA itself is a valid JSON Schema (draft 2020-12), then prints one JSON
line per manifest: {"file": ..., "valid": true|false, "errors": ["path: message", ...]}.
A file that is not JSON is reported invalid. Exit status: 0 when the check ran (whatever
the verdicts), 2 for a bad schema or usage, 3 when jsonschema is missing.
"""

import json
import sys

try:
    import jsonschema
except ImportError:
    sys.stderr.write("schema_check.py needs jsonschema: pip install jsonschema\n")
    sys.exit(3)


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    with open(argv[1], "rb") as f:
        schema = json.loads(f.read())
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as error:
        sys.stderr.write(f"{argv[1]} is not a valid draft 2020-12 schema: {error.message}\n")
        return 2
    validator = jsonschema.Draft202012Validator(schema)
    for path in argv[2:]:
        with open(path, "rb") as f:
            data = f.read()
        try:
            instance = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as error:
            print(json.dumps({"file": path, "valid": False, "errors": [f"not JSON: {error}"]}))
            continue
        errors = sorted(
            ("/".join(str(p) for p in e.absolute_path) or "(root)") + ": " + e.message
            for e in validator.iter_errors(instance))
        print(json.dumps({"file": path, "valid": not errors, "errors": errors}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
