//  raw_reader.h - splits a stream of MessagePack objects written one after the other (no
//  framing) read from a file descriptor into single objects, for `zmesh push --raw`. The bytes
//  are untrusted: object boundaries are found by a walk that allocates nothing for what a header
//  claims, and an object over the size bound, nested too deep or cut off by the end of input is
//  reported, never asserted. It reads and splits only; sending is the caller's.
#ifndef ZM_RAW_READER_H_INCLUDED
#define ZM_RAW_READER_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

typedef struct zm_raw_reader zm_raw_reader_t;

typedef enum {
    ZM_RAW_OK,          //  *data_p holds the next object
    ZM_RAW_NONE,        //  no whole object came within the timeout, or a signal cut the wait
    ZM_RAW_EOF,         //  end of input right after an object: every object returned
    ZM_RAW_TRUNCATED,   //  the input ended inside an object; final
    ZM_RAW_BAD,         //  the next bytes are not MessagePack (or nest over 64); final
    ZM_RAW_TOOBIG,      //  the next object is over max_object bytes; final
    ZM_RAW_ERROR,       //  poll(2) or read(2) failed; errno says why
} zm_raw_status_t;

//  Creates a reader of fd (borrowed: never closed) that refuses objects over max_object bytes.
zm_raw_reader_t *zm_raw_reader_new(int fd, size_t max_object);

//  Frees the reader and sets *self_p to NULL; does nothing if *self_p is NULL.
void zm_raw_reader_destroy(zm_raw_reader_t **self_p);

//  Returns the next object. On ZM_RAW_OK *data_p borrows its *size_p bytes until the next call
//  on self. timeout_ms is as for zm_line_reader_next: -1 waits for ever, 0 looks only at what
//  is there now, > 0 waits at most that long; a signal returns ZM_RAW_NONE at once. The final
//  statuses are returned again by every later call.
zm_raw_status_t zm_raw_reader_next(zm_raw_reader_t *self, int timeout_ms, const void **data_p,
                                   size_t *size_p);

//  Offset in the input of the first byte of the object last returned or failed on, for messages.
uint64_t zm_raw_reader_offset(const zm_raw_reader_t *self);

#endif
