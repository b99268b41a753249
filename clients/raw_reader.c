//  raw_reader.c - finds where each MessagePack object of a byte stream ends, reading the stream
//  as it comes. The walk reads type bytes and length fields only: it never allocates from a
//  claimed count (each child takes at least one byte, so a claim just makes the object need
//  that many more bytes, and an object that needs more than the bound is refused at once), it
//  bounds nesting with a fixed stack, and it resumes nothing: a partial object is walked again
//  from its start once the buffered part doubled, or when the input has nothing more for now
//  (a writer that pauses after an object must not wait on the doubling), so reading a fast
//  stream stays linear. Each object found is then checked by zmesh_msgpack_check, the same
//  validator the library and the broker use.
#include "raw_reader.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "zm_alloc.h"
#include "zmesh.h"

#define S_DEPTH_MAX 64              //  nesting bound: the broker's own default
#define S_CHUNK (64u << 10)         //  bytes asked of read(2) at least

struct zm_raw_reader {
    int fd;                     //  borrowed input
    size_t max_object;          //  largest object accepted, in bytes
    uint8_t *buffer;            //  owned: bytes read and not yet returned
    size_t capacity;            //  size of buffer
    size_t start;               //  first byte of the next object
    size_t end;                 //  one past the last byte read
    size_t returned;            //  size of the object returned last, dropped at the next call
    size_t need;                //  bytes from start the next object needs at least
    size_t walked;              //  bytes from start at the last walk of a partial object
    uint64_t offset;            //  input offset of buffer[start]
    bool eof;                   //  read(2) returned 0
    bool idle;                  //  the input had nothing more when last looked at
    zm_raw_status_t final;      //  a final status once reached; ZM_RAW_OK until then
};

typedef enum { S_WHOLE, S_MORE, S_BAD } s_walk_t;

//  What a type byte in 0xc0..0xdf says: payload bytes that follow it with no length field
//  (fixed), the width of a length field (width), and what the length counts (kind).
enum { S_SCALAR, S_INVALID, S_BYTES, S_ARRAY, S_MAP };
typedef struct {
    uint8_t fixed;
    uint8_t width;
    uint8_t kind;
} s_type_t;

static const s_type_t s_types[32] = {
    {0, 0, S_SCALAR}, {0, 0, S_INVALID}, {0, 0, S_SCALAR}, {0, 0, S_SCALAR},   //  c0-c3
    {0, 1, S_BYTES},  {0, 2, S_BYTES},   {0, 4, S_BYTES},                      //  bin 8/16/32
    {1, 1, S_BYTES},  {1, 2, S_BYTES},   {1, 4, S_BYTES},                      //  ext: type+data
    {4, 0, S_SCALAR}, {8, 0, S_SCALAR},                                        //  float 32/64
    {1, 0, S_SCALAR}, {2, 0, S_SCALAR},  {4, 0, S_SCALAR}, {8, 0, S_SCALAR},   //  uint
    {1, 0, S_SCALAR}, {2, 0, S_SCALAR},  {4, 0, S_SCALAR}, {8, 0, S_SCALAR},   //  int
    {2, 0, S_SCALAR}, {3, 0, S_SCALAR},  {5, 0, S_SCALAR}, {9, 0, S_SCALAR},   //  fixext
    {17, 0, S_SCALAR},
    {0, 1, S_BYTES},  {0, 2, S_BYTES},   {0, 4, S_BYTES},                      //  str 8/16/32
    {0, 2, S_ARRAY},  {0, 4, S_ARRAY},   {0, 2, S_MAP},    {0, 4, S_MAP},
};

//  Reads the item at p (left bytes from p, at least 1): *skip_p gets the bytes it takes besides
//  its children, *children_p their number. Returns S_MORE (with *skip_p the bytes known to be
//  needed) when its header is cut short, S_BAD on the one invalid type byte.
static s_walk_t
s_item(const uint8_t *p, size_t left, uint64_t *skip_p, uint64_t *children_p)
{
    uint8_t b = p[0];
    *skip_p = 1;
    *children_p = 0;
    if (b <= 0x7f || b >= 0xe0)
        return S_WHOLE;                             //  fixint
    if (b <= 0x9f) {                                //  fixmap, fixarray
        *children_p = b <= 0x8f ? (uint64_t) (b & 0x0f) * 2 : (uint64_t) (b & 0x0f);
        return S_WHOLE;
    }
    if (b <= 0xbf) {
        *skip_p = 1 + (uint64_t) (b & 0x1f);        //  fixstr
        return S_WHOLE;
    }
    const s_type_t *type = &s_types[b - 0xc0];
    if (type->kind == S_INVALID)
        return S_BAD;
    *skip_p = 1 + (uint64_t) type->width + type->fixed;
    if (left < 1 + (size_t) type->width)
        return S_MORE;
    uint64_t length = 0;
    for (int index = 1; index <= type->width; index++)
        length = length << 8 | p[index];
    if (type->kind == S_BYTES)
        *skip_p += length;
    else if (type->kind == S_ARRAY)
        *children_p = length;
    else if (type->kind == S_MAP)
        *children_p = length * 2;
    return S_WHOLE;
}

//  Walks the object at data. S_WHOLE: *size_p is its size. S_MORE: it goes on past size bytes
//  and *size_p is how many it needs at least. S_BAD: not MessagePack, or nested too deep.
static s_walk_t
s_walk(const uint8_t *data, size_t size, uint64_t *size_p)
{
    uint64_t pending[S_DEPTH_MAX + 1];              //  children still to read, per depth
    int depth = 0;
    pending[0] = 1;
    uint64_t at = 0;
    while (depth >= 0) {
        if (pending[depth] == 0) {
            depth--;
            continue;
        }
        uint64_t skip = 1;
        uint64_t children = 0;
        s_walk_t walk = at < size ? s_item(data + at, size - at, &skip, &children) : S_MORE;
        if (walk == S_BAD)
            return S_BAD;
        if (walk == S_MORE || at + skip > size) {
            *size_p = at + skip + pending[depth] - 1;   //  each item left takes a byte at least
            return S_MORE;
        }
        at += skip;
        pending[depth]--;
        if (children > 0) {
            if (depth == S_DEPTH_MAX)
                return S_BAD;
            pending[++depth] = children;
        }
    }
    *size_p = at;
    return S_WHOLE;
}

zm_raw_reader_t *
zm_raw_reader_new(int fd, size_t max_object)
{
    zm_raw_reader_t *self = zm_alloc(sizeof *self);
    self->fd = fd;
    self->max_object = max_object;
    self->final = ZM_RAW_OK;
    return self;
}

void
zm_raw_reader_destroy(zm_raw_reader_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->buffer);
    free(*self_p);
    *self_p = NULL;
}

uint64_t
zm_raw_reader_offset(const zm_raw_reader_t *self)
{
    return self->offset;
}

static int64_t
s_now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

//  Makes room for at least S_CHUNK more bytes (or what the next object needs) after end.
static void
s_make_room(zm_raw_reader_t *self)
{
    if (self->start > 0) {
        memmove(self->buffer, self->buffer + self->start, self->end - self->start);
        self->end -= self->start;
        self->start = 0;
    }
    size_t wanted = (self->need > self->end ? self->need : self->end) + S_CHUNK;
    if (wanted <= self->capacity)
        return;
    size_t capacity = self->capacity ? self->capacity : S_CHUNK;
    while (capacity < wanted)
        capacity *= 2;
    uint8_t *buffer = realloc(self->buffer, capacity);
    if (!buffer)
        abort();                    //  out of memory aborts, as zm_alloc does
    self->buffer = buffer;
    self->capacity = capacity;
}

//  Reads what the input has, waiting until deadline (-1: for ever). Returns ZM_RAW_OK when
//  bytes or the end of input came, or when bytes not walked yet are all the input has for now
//  (self->idle: walk them before waiting), ZM_RAW_NONE on timeout or signal, ZM_RAW_ERROR.
static zm_raw_status_t
s_fill(zm_raw_reader_t *self, int64_t deadline)
{
    s_make_room(self);
    if (self->end - self->start > self->walked && !self->idle) {
        struct pollfd item = {.fd = self->fd, .events = POLLIN};
        if (poll(&item, 1, 0) == 0) {
            self->idle = true;
            return ZM_RAW_OK;
        }
    }
    while (true) {
        int timeout_ms = -1;
        if (deadline >= 0) {
            int64_t left = deadline - s_now_ms();
            timeout_ms = left > 0 ? (int) (left < 1000000 ? left : 1000000) : 0;
        }
        struct pollfd item = {.fd = self->fd, .events = POLLIN};
        int ready = poll(&item, 1, timeout_ms);
        if (ready < 0)
            return errno == EINTR ? ZM_RAW_NONE : ZM_RAW_ERROR;
        if (ready == 0)
            return ZM_RAW_NONE;
        size_t room = self->capacity - self->end;
        ssize_t got = read(self->fd, self->buffer + self->end, room);
        if (got < 0 && errno == EINTR)
            return ZM_RAW_NONE;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (got < 0)
            return ZM_RAW_ERROR;
        self->eof = got == 0;
        self->idle = false;
        self->end += (size_t) got;
        return ZM_RAW_OK;
    }
}

//  Walks the buffered start of the next object if that can tell more than last time.
//  Returns ZM_RAW_OK with *size_p when it is whole, ZM_RAW_NONE when more bytes are needed,
//  or a final status.
static zm_raw_status_t
s_try(zm_raw_reader_t *self, size_t *size_p)
{
    size_t held = self->end - self->start;
    if (held == 0)
        return self->eof ? ZM_RAW_EOF : ZM_RAW_NONE;
    bool worth = held >= self->need
              && (self->eof || self->idle || self->walked == 0 || held >= 2 * self->walked);
    if (!worth)
        return self->eof ? ZM_RAW_TRUNCATED : ZM_RAW_NONE;
    uint64_t size = 0;
    s_walk_t walk = s_walk(self->buffer + self->start, held, &size);
    self->walked = held;
    if (walk == S_BAD)
        return ZM_RAW_BAD;
    if (size > self->max_object)
        return ZM_RAW_TOOBIG;
    if (walk == S_MORE) {
        self->need = (size_t) size;
        return self->eof ? ZM_RAW_TRUNCATED : ZM_RAW_NONE;
    }
    if (zmesh_msgpack_check(self->buffer + self->start, (size_t) size, 0) != ZMESH_OK)
        return ZM_RAW_BAD;
    *size_p = (size_t) size;
    return ZM_RAW_OK;
}

zm_raw_status_t
zm_raw_reader_next(zm_raw_reader_t *self, int timeout_ms, const void **data_p, size_t *size_p)
{
    if (self->final != ZM_RAW_OK)
        return self->final;
    self->start += self->returned;
    self->offset += self->returned;
    self->returned = 0;
    int64_t deadline = timeout_ms < 0 ? -1 : s_now_ms() + timeout_ms;
    while (true) {
        size_t size = 0;
        zm_raw_status_t status = s_try(self, &size);
        if (status == ZM_RAW_OK) {
            *data_p = self->buffer + self->start;
            *size_p = size;
            self->returned = size;
            self->need = 0;
            self->walked = 0;
            return ZM_RAW_OK;
        }
        if (status != ZM_RAW_NONE) {
            self->final = status;
            return status;
        }
        status = s_fill(self, deadline);
        if (status != ZM_RAW_OK)
            return status;
    }
}
