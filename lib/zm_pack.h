//  zm_pack - MessagePack primitives for untrusted bytes: a validator that
//  walks one object without allocating, and a strict cursor reader and a
//  bounded writer for the small header frames of the wire protocol. No
//  sockets, no logging, no policy: callers decide what a failure means.
#ifndef ZM_PACK_H_INCLUDED
#define ZM_PACK_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZM_PACK_DEPTH_MAX 64          //  default nesting bound of payloads

//  Returns ZMESH_OK if data holds exactly one well-formed object nested at
//  most max_depth deep, ZMESH_EINVAL otherwise. max_depth <= 0 or over
//  ZM_PACK_DEPTH_MAX means ZM_PACK_DEPTH_MAX: the walk's stack is that deep.
//  Counts are checked against the bytes left, so hostile headers cost nothing.
int zm_pack_check(const void *data, size_t size, int max_depth);

//  A read cursor over a buffer. Any failed read sets ok to false and every
//  later read fails too, so a decoder checks ok once at the end.
typedef struct {
    const uint8_t *cursor;  //  borrowed: next byte to read
    const uint8_t *end;     //  borrowed: one past the last byte
    bool ok;                //  false after the first failed read
} zm_reader_t;

void zm_reader_init(zm_reader_t *self, const void *data, size_t size);

//  Reads an array header; *count_p gets its element count.
bool zm_reader_array(zm_reader_t *self, uint32_t *count_p);

//  Reads a non-negative integer in any encoding into *value_p.
bool zm_reader_uint(zm_reader_t *self, uint64_t *value_p);

//  Reads a str; *data_p borrows its bytes (not NUL-terminated).
bool zm_reader_str(zm_reader_t *self, const char **data_p, size_t *size_p);

//  True if every byte was read.
bool zm_reader_done(const zm_reader_t *self);

//  A writer into a fixed buffer; overflow sets ok to false.
typedef struct {
    uint8_t *data;          //  borrowed buffer
    size_t size;            //  bytes written
    size_t max_size;        //  capacity of data
    bool ok;                //  false once anything did not fit
} zm_writer_t;

void zm_writer_init(zm_writer_t *self, void *buffer, size_t max_size);
void zm_writer_array(zm_writer_t *self, uint32_t count);
void zm_writer_uint(zm_writer_t *self, uint64_t value);
void zm_writer_str(zm_writer_t *self, const char *data, size_t size);

#endif
