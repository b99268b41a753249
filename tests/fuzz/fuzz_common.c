//  fuzz_common - the oracle check and the input cursor of the fuzz targets.
#include "fuzz_common.h"

#include <stdio.h>
#include <stdlib.h>

void
zm_fuzz_fail(const char *what, const char *file, int line)
{
    fprintf(stderr, "%s:%d: fuzz oracle failed: %s\n", file, line, what);
    fflush(stderr);
    abort();
}

void
zm_fuzz_cursor_init(zm_fuzz_cursor_t *self, const uint8_t *data, size_t size)
{
    assert(self);
    assert(data || size == 0);
    self->data = data;
    self->size = size;
    self->offset = 0;
}

size_t
zm_fuzz_left(const zm_fuzz_cursor_t *self)
{
    assert(self);
    return self->size - self->offset;
}

uint8_t
zm_fuzz_byte(zm_fuzz_cursor_t *self)
{
    assert(self);
    if (self->offset >= self->size)
        return 0;
    return self->data[self->offset++];
}

uint16_t
zm_fuzz_u16(zm_fuzz_cursor_t *self)
{
    uint16_t high = zm_fuzz_byte(self);
    return (uint16_t) (high << 8 | zm_fuzz_byte(self));
}

zframe_t *
zm_fuzz_frame(zm_fuzz_cursor_t *self, size_t size)
{
    assert(self);
    size_t left = zm_fuzz_left(self);
    if (size > left)
        size = left;
    zframe_t *frame = zframe_new(size ? self->data + self->offset : NULL, size);
    self->offset += size;
    return frame;
}

void
zm_fuzz_quiet(void)
{
    zsys_handler_set(NULL);         //  no CZMQ SIGINT handler: Ctrl-C stops the fuzzer
    zsys_set_logstream(NULL);
}
