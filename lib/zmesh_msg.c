//  zmesh_msg, zmesh_pack - owned MessagePack payloads, and a builder for them
//  on top of msgpack-c's packer (packing is safe; unpacking untrusted bytes
//  goes through zm_pack_check instead).
#include "zm_alloc.h"
#include "zm_msg.h"
#include "zm_pack.h"

#include <msgpack.h>

struct zmesh_msg {
    zframe_t *frame;            //  owned: the payload bytes
};

zmesh_msg_t *
zm_msg_adopt(zframe_t **frame_p)
{
    assert(frame_p && *frame_p);
    zmesh_msg_t *self = zm_alloc(sizeof *self);
    self->frame = *frame_p;
    *frame_p = NULL;
    return self;
}

zframe_t *
zm_msg_release(zmesh_msg_t **msg_p)
{
    assert(msg_p && *msg_p);
    zframe_t *frame = (*msg_p)->frame;
    free(*msg_p);
    *msg_p = NULL;
    return frame;
}

zmesh_msg_t *
zmesh_msg_new(const void *data, size_t size)
{
    assert(data || size == 0);
    zframe_t *frame = zframe_new(data, size);
    assert(frame);
    return zm_msg_adopt(&frame);
}

void
zmesh_msg_destroy(zmesh_msg_t **self_p)
{
    assert(self_p);
    if (!*self_p)
        return;
    zframe_destroy(&(*self_p)->frame);
    free(*self_p);
    *self_p = NULL;
}

const void *
zmesh_msg_data(const zmesh_msg_t *self)
{
    assert(self);
    return zframe_data(self->frame);
}

size_t
zmesh_msg_size(const zmesh_msg_t *self)
{
    assert(self);
    return zframe_size(self->frame);
}

int
zmesh_msgpack_check(const void *data, size_t size, int max_depth)
{
    return zm_pack_check(data, size, max_depth);
}

struct zmesh_pack {
    msgpack_sbuffer buffer;     //  owned bytes
    msgpack_packer packer;      //  writes into buffer
};

zmesh_pack_t *
zmesh_pack_new(void)
{
    zmesh_pack_t *self = zm_alloc(sizeof *self);
    msgpack_sbuffer_init(&self->buffer);
    msgpack_packer_init(&self->packer, &self->buffer, msgpack_sbuffer_write);
    return self;
}

void
zmesh_pack_destroy(zmesh_pack_t **self_p)
{
    assert(self_p);
    if (!*self_p)
        return;
    msgpack_sbuffer_destroy(&(*self_p)->buffer);
    free(*self_p);
    *self_p = NULL;
}

//  msgpack-c returns non-zero only when its realloc fails: abort, as zm_alloc does.
static void
s_check(int rc)
{
    if (rc != 0) {
        fprintf(stderr, "zmesh: out of memory packing msgpack\n");
        abort();
    }
}

void
zmesh_pack_nil(zmesh_pack_t *self)
{
    s_check(msgpack_pack_nil(&self->packer));
}

void
zmesh_pack_bool(zmesh_pack_t *self, bool value)
{
    s_check(value ? msgpack_pack_true(&self->packer) : msgpack_pack_false(&self->packer));
}

void
zmesh_pack_int(zmesh_pack_t *self, int64_t value)
{
    s_check(msgpack_pack_int64(&self->packer, value));
}

void
zmesh_pack_uint(zmesh_pack_t *self, uint64_t value)
{
    s_check(msgpack_pack_uint64(&self->packer, value));
}

void
zmesh_pack_double(zmesh_pack_t *self, double value)
{
    s_check(msgpack_pack_double(&self->packer, value));
}

void
zmesh_pack_str(zmesh_pack_t *self, const char *value)
{
    assert(value);
    zmesh_pack_strn(self, value, strlen(value));
}

void
zmesh_pack_strn(zmesh_pack_t *self, const char *value, size_t size)
{
    assert(self);
    assert(value || size == 0);
    s_check(msgpack_pack_str_with_body(&self->packer, value, size));
}

void
zmesh_pack_bin(zmesh_pack_t *self, const void *value, size_t size)
{
    assert(self);
    assert(value || size == 0);
    s_check(msgpack_pack_bin_with_body(&self->packer, value, size));
}

void
zmesh_pack_array(zmesh_pack_t *self, uint32_t count)
{
    s_check(msgpack_pack_array(&self->packer, count));
}

void
zmesh_pack_map(zmesh_pack_t *self, uint32_t count)
{
    s_check(msgpack_pack_map(&self->packer, count));
}

const void *
zmesh_pack_data(const zmesh_pack_t *self)
{
    assert(self);
    return self->buffer.data;
}

size_t
zmesh_pack_size(const zmesh_pack_t *self)
{
    assert(self);
    return self->buffer.size;
}

void
zmesh_pack_reset(zmesh_pack_t *self)
{
    assert(self);
    msgpack_sbuffer_clear(&self->buffer);
}
