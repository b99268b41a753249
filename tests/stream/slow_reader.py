"""Reads stdin slowly: CHUNK bytes, then a pause of PAUSE_MS, until EOF; after each chunk it
writes the bytes read so far to the file PROGRESS (replaced whole, so a reader never sees half a
number). Usage: slow_reader.py CHUNK PAUSE_MS PROGRESS"""
import os
import sys
import time

chunk, pause, progress = int(sys.argv[1]), int(sys.argv[2]) / 1000.0, sys.argv[3]
total = 0
while True:
    want, got = chunk, 0
    while want > 0:
        data = os.read(0, want)
        if not data:
            break
        got += len(data)
        want -= len(data)
    total += got
    with open(progress + ".tmp", "w") as out:
        out.write(str(total))
    os.replace(progress + ".tmp", progress)
    if got < chunk:
        break
    time.sleep(pause)
