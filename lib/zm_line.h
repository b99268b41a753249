//  line_reader.h - reads newline-terminated lines from a file descriptor, and says without
//  blocking whether one is ready, so `zmesh call` can pipeline piped input yet answer an
//  interactive user (or a coprocess) line by line. stdio's getline cannot tell "nothing yet"
//  from "wait", which is why this exists.
#ifndef ZM_LINE_READER_H_INCLUDED
#define ZM_LINE_READER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef struct zm_line_reader zm_line_reader_t;

typedef enum {
    ZM_LINE_OK,         //  *line_p holds the next line
    ZM_LINE_NONE,       //  no whole line is ready now (only when block is false)
    ZM_LINE_EOF,        //  end of input, every line returned
    ZM_LINE_TOOLONG,    //  a line is longer than max_line bytes
    ZM_LINE_ERROR,      //  read(2) failed; errno says why
} zm_line_status_t;

//  Creates a reader of fd (borrowed, not closed) that refuses lines over max_line bytes.
zm_line_reader_t *zm_line_reader_new(int fd, size_t max_line);

//  Frees the reader and sets *self_p to NULL; does nothing if *self_p is NULL.
void zm_line_reader_destroy(zm_line_reader_t **self_p);

//  Returns the next line, without its "\n" or "\r\n", NUL-terminated in *line_p (borrowed until
//  the next call) with its length in *length_p. A last line without "\n" counts as a line.
//  With block false it returns ZM_LINE_NONE instead of waiting for input.
zm_line_status_t zm_line_reader_next(zm_line_reader_t *self, bool block, char **line_p,
                                     size_t *length_p);

#endif
