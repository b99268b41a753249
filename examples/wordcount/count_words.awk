# count_words.awk: stage 2 of the word-count example. For each JSON line on stdin (an array of
# lowercase words, as split_words.py prints them) prints one JSON line: an object mapping each
# word to how often it occurs in the array. The words are letters only, so the array needs no
# real JSON parser: strip brackets, quotes and blanks, split at commas. fflush() after each line:
# zmesh-worker --exec waits for each answer.
{
    gsub(/[][" ]/, "")
    n = split($0, words, ",")
    for (word in counts)
        delete counts[word]
    for (i = 1; i <= n; i++)
        if (words[i] != "")
            counts[words[i]]++
    out = "{"
    sep = ""
    for (word in counts) {
        out = out sep "\"" word "\":" counts[word]
        sep = ","
    }
    print out "}"
    fflush()
}
