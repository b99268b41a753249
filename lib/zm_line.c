//  line_reader.c - a line reader over a raw file descriptor with a non-blocking "is a line
//  ready?" mode. It keeps bytes read past the current line for the next call, bounds a line's
//  length so endless input without newlines cannot eat all memory, and never blocks when
//  asked not to. It does no parsing of the lines.
#include "line_reader.h"

#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zm_alloc.h"

#define S_INITIAL_CAPACITY 65536

struct zm_line_reader {
    int fd;                     //  borrowed: the input
    size_t max_line;            //  longest line accepted, in bytes
    char *buffer;               //  owned: bytes read, always one spare byte for a NUL
    size_t capacity;            //  size of buffer
    size_t start;               //  first byte not yet returned
    size_t end;                 //  one past the last byte read
    size_t scanned;             //  bytes after start known to hold no '\n'
    bool eof;                   //  read(2) returned 0
};

zm_line_reader_t *
zm_line_reader_new(int fd, size_t max_line)
{
    assert(fd >= 0);
    assert(max_line > 0);
    zm_line_reader_t *self = zm_alloc(sizeof *self);
    self->fd = fd;
    self->max_line = max_line;
    self->capacity = S_INITIAL_CAPACITY;
    self->buffer = zm_alloc(self->capacity);
    return self;
}

void
zm_line_reader_destroy(zm_line_reader_t **self_p)
{
    assert(self_p);
    zm_line_reader_t *self = *self_p;
    if (!self)
        return;
    free(self->buffer);
    free(self);
    *self_p = NULL;
}

//  Cuts the line ending at newline (an index into buffer) out of the buffer.
static void
s_cut(zm_line_reader_t *self, size_t newline, char **line_p, size_t *length_p)
{
    size_t length = newline - self->start;
    char *line = self->buffer + self->start;
    if (length > 0 && line[length - 1] == '\r')
        length--;
    line[length] = '\0';
    self->start = newline + (newline < self->end ? 1 : 0);
    self->scanned = 0;
    *line_p = line;
    *length_p = length;
}

//  Returns true and the line if the buffer holds a whole one.
static bool
s_take_line(zm_line_reader_t *self, char **line_p, size_t *length_p)
{
    size_t from = self->start + self->scanned;
    char *newline = memchr(self->buffer + from, '\n', self->end - from);
    if (!newline) {
        self->scanned = self->end - self->start;
        return false;
    }
    s_cut(self, (size_t) (newline - self->buffer), line_p, length_p);
    return true;
}

//  Makes room for at least one more byte plus the spare NUL byte, moving unread bytes to the
//  front first and growing only when a single line needs it.
static void
s_make_room(zm_line_reader_t *self)
{
    if (self->start > 0) {
        memmove(self->buffer, self->buffer + self->start, self->end - self->start);
        self->end -= self->start;
        self->start = 0;
    }
    if (self->end + 2 <= self->capacity)
        return;
    size_t capacity = self->capacity * 2;
    if (capacity > self->max_line + 2)
        capacity = self->max_line + 2;      //  the caller checked end <= max_line
    char *buffer = realloc(self->buffer, capacity);
    if (!buffer)
        abort();                            //  out of memory aborts, as zm_alloc does
    self->buffer = buffer;
    self->capacity = capacity;
}

//  Reads once. Returns ZM_LINE_OK when bytes or end of input arrived, ZM_LINE_NONE when none is
//  there and block is false, ZM_LINE_ERROR when read(2) failed.
static zm_line_status_t
s_fill(zm_line_reader_t *self, bool block)
{
    struct pollfd item = {.fd = self->fd, .events = POLLIN};
    int ready = poll(&item, 1, block ? -1 : 0);
    if (ready == 0 || (ready < 0 && !block))
        return ZM_LINE_NONE;                //  POLLHUP and POLLERR count: read will not block
    s_make_room(self);
    ssize_t size = read(self->fd, self->buffer + self->end, self->capacity - self->end - 1);
    if (size > 0)
        self->end += (size_t) size;
    else if (size == 0)
        self->eof = true;
    else if (errno == EAGAIN || errno == EWOULDBLOCK)
        return block ? ZM_LINE_OK : ZM_LINE_NONE;   //  blocking: poll again on the next turn
    else if (errno != EINTR)
        return ZM_LINE_ERROR;
    return ZM_LINE_OK;
}

zm_line_status_t
zm_line_reader_next(zm_line_reader_t *self, bool block, char **line_p, size_t *length_p)
{
    assert(self);
    assert(line_p);
    assert(length_p);
    while (true) {
        if (s_take_line(self, line_p, length_p))
            return ZM_LINE_OK;
        if (self->end - self->start > self->max_line)
            return ZM_LINE_TOOLONG;
        if (self->eof && self->start == self->end)
            return ZM_LINE_EOF;
        if (self->eof) {
            s_cut(self, self->end, line_p, length_p);  //  a last line with no "\n"
            return ZM_LINE_OK;
        }
        zm_line_status_t status = s_fill(self, block);
        if (status != ZM_LINE_OK)
            return status;
    }
}
