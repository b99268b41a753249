#!/usr/bin/python3
"""merge_counts.py: the sink of the word-count example. Sums the JSON objects {word: count} on
stdin (one per line, as `zmesh pull counts` prints them) and prints "word count" lines sorted by
word, the same form as `sort | uniq -c | awk '{print $2, $1}'` under LC_ALL=C."""
import collections
import json
import sys

totals = collections.Counter()
for line in sys.stdin:
    totals.update(json.loads(line))
for word in sorted(totals):
    print(word, totals[word])
