#!/usr/bin/python3
"""make_text.py N [SEED]: prints N lines of made-up English-like text, the same for the same
N and SEED, as input for the word-count pipeline example (README.md)."""
import random
import sys

WORDS = ("the quick brown fox jumps over lazy dog a zmesh broker routes messages between "
         "producers and consumers pipeline stage credit ack redelivered queue Mesh Queue THE "
         "Fox it's well-known x2 e-mail").split()


def main():
    lines = int(sys.argv[1])
    rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
    for _ in range(lines):
        words = [rng.choice(WORDS) for _ in range(rng.randint(0, 12))]
        print(" ".join(words) + rng.choice(("", ".", "!", ", and so on...")))


if __name__ == "__main__":
    main()
