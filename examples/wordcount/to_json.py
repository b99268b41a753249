#!/usr/bin/python3
"""to_json.py: prints each line of stdin as one JSON string, the input `zmesh push` wants
(one JSON value per line)."""
import json
import sys

for line in sys.stdin:
    print(json.dumps(line.rstrip("\n")))
