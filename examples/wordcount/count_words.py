#!/usr/bin/python3
"""count_words.py: stage 2 of the word-count example. For each JSON line on stdin (an array of
words, as split_words.py prints them) prints one JSON line: an object mapping each word to how
often it occurs in the array. One line in, one line out, flushed: zmesh-worker --exec waits for
each answer."""
import collections
import json
import sys

for line in sys.stdin:
    print(json.dumps(collections.Counter(json.loads(line))), flush=True)
