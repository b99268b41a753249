//  zm_line.h - reads newline-terminated lines from a file descriptor with a timeout, so that a
//  program can wait for a line, poll for one, or wait at most until a deadline: `zmesh call`
//  pipelines piped stdin yet answers an interactive user line by line, and zmesh-worker's --exec
//  bridge reads a child's reply while still honouring its stop grace. stdio's getline cannot
//  tell "nothing yet" from "wait", which is why this exists. It reads only, never parses.
#ifndef ZM_LINE_H_INCLUDED
#define ZM_LINE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef struct zm_line_reader zm_line_reader_t;

typedef enum {
    ZM_LINE_OK,         //  *line_p holds the next line
    ZM_LINE_NONE,       //  no whole line came within the timeout, or a signal cut the wait short
    ZM_LINE_EOF,        //  end of input, every line returned
    ZM_LINE_TOOLONG,    //  the next line is longer than max_line bytes; final, see below
    ZM_LINE_ERROR,      //  poll(2) or read(2) failed; errno says why
} zm_line_status_t;

//  Creates a reader of fd (borrowed: never closed) that refuses lines over max_line bytes, not
//  counting the "\n" or "\r\n". fd may be blocking or not. Aborts on OOM, as zm_alloc does.
zm_line_reader_t *zm_line_reader_new(int fd, size_t max_line);

//  Frees the reader and sets *self_p to NULL; does nothing if *self_p is NULL.
void zm_line_reader_destroy(zm_line_reader_t **self_p);

//  Returns the next line. On ZM_LINE_OK *line_p is the line without its "\n" or "\r\n",
//  NUL-terminated, borrowed until the next call on self, and *length_p its length in bytes (it
//  may hold NUL bytes of its own); a last line that the end of input cuts off before any "\n"
//  still counts, returned as it is. Bytes read past the line are kept for the next call.
//
//  timeout_ms -1 waits for ever, 0 only looks at what is buffered or readable now, > 0 waits at
//  most that long in all (it never returns ZM_LINE_NONE before timeout_ms has passed, unless
//  interrupted). A signal that interrupts the wait (EINTR) makes it return ZM_LINE_NONE at
//  once, whatever timeout_ms, so a caller can look at the flags its handlers set; it loses no
//  bytes and may simply call again.
//
//  ZM_LINE_TOOLONG is final: the reader cannot find where the long line ends without reading
//  it all, so every later call returns ZM_LINE_TOOLONG again. After ZM_LINE_ERROR, with errno
//  set, a later call tries again; after ZM_LINE_EOF, every later call returns ZM_LINE_EOF.
//  *line_p and *length_p are set only on ZM_LINE_OK.
zm_line_status_t zm_line_reader_next(zm_line_reader_t *self, int timeout_ms, char **line_p,
                                     size_t *length_p);

//  Whether the last line returned ended with a "\n": false only for a last line cut off by the
//  end of input, for callers to which such a line means a writer that died mid-line.
bool zm_line_reader_terminated(zm_line_reader_t *self);

#endif
