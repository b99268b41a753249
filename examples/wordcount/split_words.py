#!/usr/bin/python3
"""split_words.py: stage 1 of the word-count example. For each JSON line on stdin (a string of
text) prints one JSON line: the array of its words, lowercased. A word is a run of ASCII
letters, as for `tr -cs A-Za-z '\\n'`. One line in, one line out, flushed: zmesh-worker --exec
waits for each answer."""
import json
import re
import sys

for line in sys.stdin:
    text = json.loads(line)
    print(json.dumps(re.findall(r"[a-z]+", text.lower())), flush=True)
