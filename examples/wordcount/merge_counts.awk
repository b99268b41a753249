# merge_counts.awk: the sink of the word-count example. Sums the JSON objects {"word": count}
# on stdin, one per line as `zmesh pull counts` prints them, and prints one "word count" line per
# word, in no particular order (pipe it to `LC_ALL=C sort`). The words are letters only, so the
# objects need no real JSON parser: strip braces, quotes and blanks, split at commas and colons.
# awk reads its input to the end here, so its read-ahead is harmless; a stage, which must
# answer each line before it gets the next, is better written in a language that does not read
# ahead (mawk, Debian's awk, does unless run with -W interactive).
{
    gsub(/[{}" ]/, "")
    n = split($0, pairs, ",")
    for (i = 1; i <= n; i++)
        if (split(pairs[i], pair, ":") == 2)
            totals[pair[1]] += pair[2]
}
END {
    for (word in totals)
        print word, totals[word]
}
