#!/usr/bin/env python3
"""An independent reading of PROTOCOL.md 3.2 ("One reading of the payload"), built on
Python's own json module made strict, to check Baton's reader (StrictJSON) against.

    strict_json.py PAYLOADS_FILE

PAYLOADS_FILE holds one payload per line, hex-encoded. Prints one line per payload, in
order: `accept`, or `refuse REASON`. Exit status 0 when every payload was judged, 2 for a
usage error. Standard library only.

Python's json is last-wins on duplicate names, accepts NaN and Infinity, lone surrogate
escapes and any depth up to its recursion limit; each of those is closed here with the
hooks json offers, or by walking the parsed value, rather than by a parser of our own.
"""

import json
import sys
import unicodedata

MAX_DEPTH = 32


class Refused(Exception):
    pass


def pairs(items):
    seen = set()
    for name, _ in items:
        # Baton's decoder keys objects by Swift strings, which compare under canonical
        # equivalence, so a name and its canonically equivalent spelling are one member.
        key = unicodedata.normalize("NFD", name)
        if key in seen:
            raise Refused(f"duplicate member {name!r}")
        seen.add(key)
    return dict(items)


def constant(name):
    raise Refused(f"{name} is not JSON")


def has_surrogate(text):
    return any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def walk(value, level):
    """Depth of `value` (0 for a scalar), refusing lone surrogates on the way."""
    if isinstance(value, dict):
        deepest = level + 1
        for name, member in value.items():
            if has_surrogate(name):
                raise Refused("a lone surrogate in a member name")
            deepest = max(deepest, walk(member, level + 1))
        return deepest
    if isinstance(value, list):
        deepest = level + 1
        for element in value:
            deepest = max(deepest, walk(element, level + 1))
        return deepest
    if isinstance(value, str) and has_surrogate(value):
        raise Refused("a lone surrogate in a string")
    return level


def judge(payload):
    try:
        text = payload.decode("utf-8")
        value = json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
        if walk(value, 0) > MAX_DEPTH:
            raise Refused(f"nested deeper than {MAX_DEPTH} levels")
    except Refused as error:
        return f"refuse {error}"
    except RecursionError:
        return "refuse too deep for Python's recursion limit"
    except (UnicodeDecodeError, ValueError) as error:
        return "refuse " + str(error).splitlines()[0]
    return "accept"


def main(argv):
    if len(argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    out = []
    with open(argv[1], "r", encoding="ascii") as f:
        for line in f:
            out.append(judge(bytes.fromhex(line.strip())))
    sys.stdout.write("\n".join(out) + ("\n" if out else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
