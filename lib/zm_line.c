//  zm_line.c - a line reader over a raw file descriptor that waits for a line for as long as it
//  is told: for ever, not at all, or up to a timeout. It keeps bytes read past the current line
//  for the next call and bounds a line's length, so endless input without newlines cannot eat
//  all memory: a buffer never grows past max_line plus "\r\n" and a NUL. It must not block longer
//  than asked, lose bytes on a signal, or parse the lines.
#include "zm_line.h"

#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "zm_alloc.h"

#define S_INITIAL_CAPACITY 65536    //  first buffer size, unless max_line needs less

struct zm_line_reader {
    int fd;                     //  borrowed: the input
    size_t max_line;            //  longest line accepted, in bytes, without "\n" or "\r\n"
    char *buffer;               //  owned: bytes read, always one spare byte for a NUL
    size_t capacity;            //  size of buffer, at most max_line + 3
    size_t start;               //  first byte not yet returned
    size_t end;                 //  one past the last byte read
    size_t scanned;             //  bytes after start known to hold no '\n'
    bool eof;                   //  read(2) returned 0
    bool toolong;               //  a line over max_line was met: every call now says so
    bool terminated;            //  the last line returned ended with "\n"
};

zm_line_reader_t *
zm_line_reader_new(int fd, size_t max_line)
{
    assert(fd >= 0);
    assert(max_line > 0 && max_line < SIZE_MAX / 2);
    zm_line_reader_t *self = zm_alloc(sizeof *self);
    self->fd = fd;
    self->max_line = max_line;
    self->capacity = S_INITIAL_CAPACITY;
    if (self->capacity > max_line + 3)
        self->capacity = max_line + 3;      //  the line, "\r\n" and the NUL
    self->buffer = zm_alloc(self->capacity);
    self->terminated = true;
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

bool
zm_line_reader_terminated(zm_line_reader_t *self)
{
    assert(self);
    return self->terminated;
}

static int64_t
s_now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000000000 + now.tv_nsec;
}

//  Milliseconds left until deadline (monotonic ns), rounded up so that a wait never ends early.
static int
s_remaining_ms(int64_t deadline)
{
    int64_t left = deadline - s_now_ns();
    return left > 0 ? (int) ((left + 999999) / 1000000) : 0;
}

//  Returns the line that ends at index newline of the buffer (end for a last line without
//  "\n") and consumes it, or ZM_LINE_TOOLONG, consuming nothing, if it is over max_line.
static zm_line_status_t
s_cut(zm_line_reader_t *self, size_t newline, char **line_p, size_t *length_p)
{
    bool terminated = newline < self->end;
    char *line = self->buffer + self->start;
    size_t length = newline - self->start;
    if (terminated && length > 0 && line[length - 1] == '\r')
        length--;
    if (length > self->max_line) {
        self->toolong = true;
        return ZM_LINE_TOOLONG;
    }
    line[length] = '\0';                    //  the '\r', the '\n' or the spare byte
    self->start = newline + (terminated ? 1 : 0);
    self->scanned = 0;
    self->terminated = terminated;
    *line_p = line;
    *length_p = length;
    return ZM_LINE_OK;
}

//  Finds the first '\n' after start, scanning each byte only once across calls.
static bool
s_find_newline(zm_line_reader_t *self, size_t *newline_p)
{
    size_t from = self->start + self->scanned;
    char *newline = memchr(self->buffer + from, '\n', self->end - from);
    if (!newline) {
        self->scanned = self->end - self->start;
        return false;
    }
    *newline_p = (size_t) (newline - self->buffer);
    return true;
}

//  True when the unread bytes, which hold no '\n', are already more than any line may be: only
//  a '\r' may follow max_line bytes, to end them with "\r\n".
static bool
s_pending_toolong(zm_line_reader_t *self)
{
    size_t pending = self->end - self->start;
    return pending > self->max_line + 1
           || (pending == self->max_line + 1 && self->buffer[self->end - 1] != '\r');
}

//  Makes room for at least one more byte plus the spare NUL byte, moving unread bytes to the
//  front first and growing only when a single line needs it. The caller checked that the unread
//  bytes are at most max_line + 1, so max_line + 3 bytes are always enough.
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
    if (capacity > self->max_line + 3)
        capacity = self->max_line + 3;
    char *buffer = realloc(self->buffer, capacity);
    if (!buffer)
        abort();                            //  out of memory aborts, as zm_alloc does
    self->buffer = buffer;
    self->capacity = capacity;
}

//  Waits as zm_line_reader_next says (deadline is used when timeout_ms > 0), then reads once.
//  Returns ZM_LINE_OK when bytes or the end of input arrived, ZM_LINE_NONE when the time ran
//  out or a signal came, ZM_LINE_ERROR when poll(2) or read(2) failed.
static zm_line_status_t
s_fill(zm_line_reader_t *self, int timeout_ms, int64_t deadline)
{
    while (true) {
        struct pollfd item = {.fd = self->fd, .events = POLLIN};
        int wait_ms = timeout_ms > 0 ? s_remaining_ms(deadline) : timeout_ms;
        int ready = poll(&item, 1, wait_ms);
        if (ready < 0)
            return errno == EINTR ? ZM_LINE_NONE : ZM_LINE_ERROR;
        if (ready == 0 && timeout_ms > 0 && s_remaining_ms(deadline) > 0)
            continue;                       //  woke early: never give up before the deadline
        if (ready == 0)
            return ZM_LINE_NONE;
        s_make_room(self);                  //  POLLHUP and POLLERR count: read will not block
        ssize_t size = read(self->fd, self->buffer + self->end, self->capacity - self->end - 1);
        if (size >= 0) {
            self->end += (size_t) size;
            self->eof = size == 0;
            return ZM_LINE_OK;
        }
        bool again = errno == EAGAIN || errno == EWOULDBLOCK;
        if (!again && errno != EINTR)
            return ZM_LINE_ERROR;
        if (errno == EINTR || timeout_ms == 0)
            return ZM_LINE_NONE;
        //  Poll said readable, yet someone else took the bytes: wait again, for what is left.
    }
}

zm_line_status_t
zm_line_reader_next(zm_line_reader_t *self, int timeout_ms, char **line_p, size_t *length_p)
{
    assert(self);
    assert(timeout_ms >= -1);
    assert(line_p);
    assert(length_p);
    int64_t deadline = timeout_ms > 0 ? s_now_ns() + (int64_t) timeout_ms * 1000000 : 0;
    while (!self->toolong) {
        size_t newline = 0;
        if (s_find_newline(self, &newline))
            return s_cut(self, newline, line_p, length_p);
        if (s_pending_toolong(self)) {
            self->toolong = true;
            break;
        }
        if (self->eof && self->start == self->end)
            return ZM_LINE_EOF;
        if (self->eof)
            return s_cut(self, self->end, line_p, length_p);   //  a last line with no "\n"
        zm_line_status_t status = s_fill(self, timeout_ms, deadline);
        if (status != ZM_LINE_OK)
            return status;
    }
    return ZM_LINE_TOOLONG;
}
