//  kv.c - the key-value state machine: a hash of keys to values, each value
//  kept as its MessagePack bytes packed again by msgpack-c (so two encodings
//  of one value compare equal), a snapshot that is those pairs in key order.
#include "kv.h"

#include "zm_alloc.h"
#include "zm_pack.h"

#include <assert.h>
#include <czmq.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

struct zw_kv {
    zhashx_t *pairs;                //  key -> owned s_value_t
};

typedef struct {
    size_t size;
    uint8_t data[];                 //  the value, MessagePack
} s_value_t;

static void
s_value_free(void **item_p)
{
    free(*item_p);
    *item_p = NULL;
}

zw_kv_t *
zw_kv_new(void)
{
    zw_kv_t *self = zm_alloc(sizeof *self);
    self->pairs = zhashx_new();
    zhashx_set_destructor(self->pairs, s_value_free);
    return self;
}

void
zw_kv_destroy(zw_kv_t **self_p)
{
    assert(self_p);
    zw_kv_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy(&self->pairs);
    free(self);
    *self_p = NULL;
}

size_t
zw_kv_size(const zw_kv_t *self)
{
    return zhashx_size(self->pairs);
}

//  A parsed request: pointers into the unpacked object.
typedef struct {
    msgpack_unpacked unpacked;      //  owns what the pointers below point into
    const msgpack_object *op, *key, *value, *expected;
    bool has_expected;
} s_request_t;

static bool
s_str_is(const msgpack_object *object, const char *text)
{
    return object && object->type == MSGPACK_OBJECT_STR
           && object->via.str.size == strlen(text)
           && memcmp(object->via.str.ptr, text, object->via.str.size) == 0;
}

//  Unpacks body as one map and picks its fields; false if it is not one.
static bool
s_parse(s_request_t *request, const void *body, size_t size)
{
    memset(request, 0, sizeof *request);
    msgpack_unpacked_init(&request->unpacked);
    size_t offset = 0;
    //  zm_pack_check first: its walk bounds every count by the bytes left,
    //  so a hostile header cannot make msgpack-c reserve room for it.
    if (!body || zm_pack_check(body, size, 0) != ZMESH_OK
        || msgpack_unpack_next(&request->unpacked, body, size, &offset)
                     != MSGPACK_UNPACK_SUCCESS
        || offset != size || request->unpacked.data.type != MSGPACK_OBJECT_MAP)
        return false;
    const msgpack_object_map *map = &request->unpacked.data.via.map;
    for (uint32_t i = 0; i < map->size; i++) {
        const msgpack_object *name = &map->ptr[i].key;
        const msgpack_object *field = &map->ptr[i].val;
        if (s_str_is(name, "op"))
            request->op = field;
        else if (s_str_is(name, "key"))
            request->key = field;
        else if (s_str_is(name, "value"))
            request->value = field;
        else if (s_str_is(name, "expected")) {
            request->expected = field;
            request->has_expected = true;
        }
    }
    return request->op && request->op->type == MSGPACK_OBJECT_STR;
}

//  The key as a C string in buffer; NULL if it is not a valid key.
static const char *
s_key(const s_request_t *request, char *buffer)
{
    const msgpack_object *key = request->key;
    if (!key || key->type != MSGPACK_OBJECT_STR || key->via.str.size == 0
        || key->via.str.size > ZW_KV_KEY_MAX
        || memchr(key->via.str.ptr, '\0', key->via.str.size))
        return NULL;
    memcpy(buffer, key->via.str.ptr, key->via.str.size);
    buffer[key->via.str.size] = '\0';
    return buffer;
}

//  object packed by msgpack-c, in a new s_value_t.
static s_value_t *
s_pack_value(const msgpack_object *object)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init(&buffer);
    msgpack_packer packer;
    msgpack_packer_init(&packer, &buffer, msgpack_sbuffer_write);
    msgpack_pack_object(&packer, *object);
    s_value_t *value = zm_alloc(sizeof *value + buffer.size);
    value->size = buffer.size;
    memcpy(value->data, buffer.data, buffer.size);
    msgpack_sbuffer_destroy(&buffer);
    return value;
}

static bool
s_same(const s_value_t *a, const s_value_t *b)
{
    return a->size == b->size && memcmp(a->data, b->data, a->size) == 0;
}

//  Writers of the replies: a packer over an sbuffer, turned into a message.
typedef struct {
    msgpack_sbuffer buffer;
    msgpack_packer packer;
} s_out_t;

static msgpack_packer *
s_out_init(s_out_t *out)
{
    msgpack_sbuffer_init(&out->buffer);
    msgpack_packer_init(&out->packer, &out->buffer, msgpack_sbuffer_write);
    return &out->packer;
}

static zmesh_msg_t *
s_out_take(s_out_t *out)
{
    zmesh_msg_t *msg = zmesh_msg_new(out->buffer.data, out->buffer.size);
    msgpack_sbuffer_destroy(&out->buffer);
    return msg;
}

static void
s_pack_text(msgpack_packer *packer, const char *text)
{
    size_t size = strlen(text);
    msgpack_pack_str(packer, size);
    msgpack_pack_str_body(packer, text, size);
}

//  Packs an already packed value as it is.
static void
s_pack_raw(msgpack_packer *packer, const s_value_t *value)
{
    if (value)
        msgpack_sbuffer_write(packer->data, (const char *) value->data, value->size);
    else
        msgpack_pack_nil(packer);
}

static int
s_error(zmesh_msg_t **reply_p, const char *text)
{
    s_out_t out;
    s_pack_text(s_out_init(&out), text);
    *reply_p = s_out_take(&out);
    return ZMESH_EHANDLER;
}

static int
s_put(zw_kv_t *self, const char *key, const s_request_t *request, zmesh_msg_t **reply_p)
{
    if (!request->value)
        return s_error(reply_p, "kv: put needs a value");
    zhashx_update(self->pairs, key, s_pack_value(request->value));
    s_out_t out;
    msgpack_packer *packer = s_out_init(&out);
    msgpack_pack_map(packer, 1);
    s_pack_text(packer, "ok");
    msgpack_pack_true(packer);
    *reply_p = s_out_take(&out);
    return ZMESH_OK;
}

static int
s_delete(zw_kv_t *self, const char *key, zmesh_msg_t **reply_p)
{
    bool found = zhashx_lookup(self->pairs, key) != NULL;
    zhashx_delete(self->pairs, key);
    s_out_t out;
    msgpack_packer *packer = s_out_init(&out);
    msgpack_pack_map(packer, 1);
    s_pack_text(packer, "deleted");
    found ? msgpack_pack_true(packer) : msgpack_pack_false(packer);
    *reply_p = s_out_take(&out);
    return ZMESH_OK;
}

static int
s_cas(zw_kv_t *self, const char *key, const s_request_t *request, zmesh_msg_t **reply_p)
{
    if (!request->value || !request->has_expected)
        return s_error(reply_p, "kv: cas needs expected (nil: absent) and value");
    s_value_t *current = zhashx_lookup(self->pairs, key);
    bool match;
    if (request->expected->type == MSGPACK_OBJECT_NIL)
        match = current == NULL;
    else {
        s_value_t *expected = s_pack_value(request->expected);
        match = current && s_same(current, expected);
        free(expected);
    }
    if (match) {
        zhashx_update(self->pairs, key, s_pack_value(request->value));
        current = zhashx_lookup(self->pairs, key);
    }
    s_out_t out;
    msgpack_packer *packer = s_out_init(&out);
    msgpack_pack_map(packer, 2);
    s_pack_text(packer, "ok");
    match ? msgpack_pack_true(packer) : msgpack_pack_false(packer);
    s_pack_text(packer, "value");
    s_pack_raw(packer, current);
    *reply_p = s_out_take(&out);
    return ZMESH_OK;
}

static int
s_get(zw_kv_t *self, const char *key, zmesh_msg_t **reply_p)
{
    s_value_t *value = zhashx_lookup(self->pairs, key);
    s_out_t out;
    msgpack_packer *packer = s_out_init(&out);
    msgpack_pack_map(packer, value ? 2 : 1);
    s_pack_text(packer, "found");
    if (value) {
        msgpack_pack_true(packer);
        s_pack_text(packer, "value");
        s_pack_raw(packer, value);
    }
    else
        msgpack_pack_false(packer);
    *reply_p = s_out_take(&out);
    return ZMESH_OK;
}

static int
s_digest(zw_kv_t *self, zmesh_msg_t **reply_p)
{
    char hex[ZW_KV_DIGEST_HEX];
    zw_kv_digest(self, hex);
    s_out_t out;
    msgpack_packer *packer = s_out_init(&out);
    msgpack_pack_map(packer, 2);
    s_pack_text(packer, "digest");
    s_pack_text(packer, hex);
    s_pack_text(packer, "keys");
    msgpack_pack_uint64(packer, zhashx_size(self->pairs));
    *reply_p = s_out_take(&out);
    return ZMESH_OK;
}

static bool
s_op_is_write(const msgpack_object *op)
{
    return s_str_is(op, "put") || s_str_is(op, "delete") || s_str_is(op, "cas");
}

bool
zw_kv_is_write(const void *body, size_t size)
{
    s_request_t request;
    bool write = s_parse(&request, body, size) && s_op_is_write(request.op);
    msgpack_unpacked_destroy(&request.unpacked);
    return write;
}

int
zw_kv_handle(zw_kv_t *self, bool write, const void *body, size_t size, zmesh_msg_t **reply_p)
{
    assert(self && reply_p);
    s_request_t request;
    int rc;
    char key[ZW_KV_KEY_MAX + 1];
    if (!s_parse(&request, body, size))
        rc = s_error(reply_p, "kv: a request is a map with a string \"op\"");
    else if (s_str_is(request.op, "digest"))
        rc = write ? s_error(reply_p, "kv: digest is a read: call it without --write")
                   : s_digest(self, reply_p);
    else if (!s_op_is_write(request.op) && !s_str_is(request.op, "get"))
        rc = s_error(reply_p, "kv: op must be put, get, delete, cas or digest");
    else if (s_op_is_write(request.op) != write)
        rc = s_error(reply_p, write ? "kv: get is a read: call it without --write (with "
                                      "--quorum to read through the quorum)"
                                    : "kv: put, delete and cas are writes: call them with "
                                      "--write (zmesh call kv JSON --write), so that every "
                                      "replica applies them");
    else if (!s_key(&request, key))
        rc = s_error(reply_p, "kv: key must be a string of 1 to 1024 bytes without NUL");
    else if (s_str_is(request.op, "put"))
        rc = s_put(self, key, &request, reply_p);
    else if (s_str_is(request.op, "delete"))
        rc = s_delete(self, key, reply_p);
    else if (s_str_is(request.op, "cas"))
        rc = s_cas(self, key, &request, reply_p);
    else
        rc = s_get(self, key, reply_p);
    msgpack_unpacked_destroy(&request.unpacked);
    return rc;
}

static int
s_compare_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *) a, *(const char *const *) b);
}

void
zw_kv_snapshot(const zw_kv_t *self, void **data_p, size_t *size_p)
{
    size_t count = zhashx_size(self->pairs);
    zlistx_t *keys = zhashx_keys(self->pairs);
    const char **sorted = zm_alloc((count ? count : 1) * sizeof *sorted);
    size_t n = 0;
    for (const char *key = zlistx_first(keys); key; key = zlistx_next(keys))
        sorted[n++] = key;
    qsort(sorted, n, sizeof *sorted, s_compare_keys);
    s_out_t out;
    msgpack_packer *packer = s_out_init(&out);
    msgpack_pack_map(packer, n);
    for (size_t i = 0; i < n; i++) {
        s_pack_text(packer, sorted[i]);
        s_pack_raw(packer, zhashx_lookup(self->pairs, sorted[i]));
    }
    free(sorted);
    zlistx_destroy(&keys);
    *size_p = out.buffer.size;
    *data_p = msgpack_sbuffer_release(&out.buffer);
    if (!*data_p)
        *data_p = zm_alloc(1);      //  an empty map is one byte; release never fails then
}

bool
zw_kv_restore(zw_kv_t *self, const void *data, size_t size)
{
    msgpack_unpacked unpacked;
    msgpack_unpacked_init(&unpacked);
    size_t offset = 0;
    bool ok = data && zm_pack_check(data, size, 0) == ZMESH_OK
              && msgpack_unpack_next(&unpacked, data, size, &offset) == MSGPACK_UNPACK_SUCCESS
              && offset == size && unpacked.data.type == MSGPACK_OBJECT_MAP;
    zhashx_t *pairs = zhashx_new();
    zhashx_set_destructor(pairs, s_value_free);
    const msgpack_object_map *map = ok ? &unpacked.data.via.map : NULL;
    for (uint32_t i = 0; ok && i < map->size; i++) {
        s_request_t key_only = {.key = &map->ptr[i].key};
        char key[ZW_KV_KEY_MAX + 1];
        if (!s_key(&key_only, key) || zhashx_lookup(pairs, key))
            ok = false;
        else
            zhashx_insert(pairs, key, s_pack_value(&map->ptr[i].val));
    }
    msgpack_unpacked_destroy(&unpacked);
    if (!ok) {
        zhashx_destroy(&pairs);
        return false;
    }
    zhashx_destroy(&self->pairs);
    self->pairs = pairs;
    return true;
}

void
zw_kv_digest(const zw_kv_t *self, char hex[ZW_KV_DIGEST_HEX])
{
    void *data;
    size_t size;
    zw_kv_snapshot(self, &data, &size);
    zdigest_t *digest = zdigest_new();
    zdigest_update(digest, data, size);
    const byte *sum = zdigest_data(digest);
    for (size_t i = 0; i < zdigest_size(digest) && 2 * i + 2 < ZW_KV_DIGEST_HEX + 1; i++)
        snprintf(hex + 2 * i, 3, "%02x", sum[i]);
    zdigest_destroy(&digest);
    free(data);
}
