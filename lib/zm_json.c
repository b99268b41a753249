//  zm_json.c - converts one JSON value to MessagePack and one MessagePack
//  object to compact JSON, for the CLI programs (mapping in zm_json.h). JSON
//  goes through jansson and out through msgpack-c's packer. MessagePack from
//  the network is read here, byte by byte with a bounds-checked cursor,
//  straight into jansson values: it must never reach msgpack-c's unpacker
//  (which allocates count * 16 bytes for a claimed count, ignores trailing
//  bytes and stops at 32 levels), never allocate for a count or length before
//  the bytes to back it are there, never recurse deeper than 64 levels, and
//  never assert on input bytes. Allocation failure aborts, as zm_alloc does.

#include "zm_json.h"

#include <assert.h>
#include <jansson.h>
#include <math.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  The broker rejects deeper payloads, so neither direction produces them.
#define ZM_JSON_DEPTH_MAX 64
#define ZM_JSON_DEPTH_TEXT "nesting deeper than 64"

//  A non-str map key becomes its JSON text. Escaping doubles quotes and
//  backslashes, so keys nested in keys would grow exponentially; one level
//  never needs more than ~9 bytes of text per byte (fixext1 is 3 bytes for
//  27), so longer keys are refused.
#define ZM_JSON_KEY_RATIO 12
#define ZM_JSON_KEY_SLACK 32

//  A cursor over untrusted MessagePack bytes. Every read checks the bytes left.
typedef struct {
    const uint8_t *data; //  borrowed: the caller's bytes
    size_t size;         //  bytes in data
    size_t offset;       //  next byte to read
    size_t item;         //  offset of the item being read, for error reports
    const char *reason;  //  static text of the first failure, NULL while none
    size_t failed_at;    //  item offset of the first failure
} reader_t;

static json_t *s_read_value(reader_t *self, int depth);

static void
s_out_of_memory(void)
{
    fputs("zm_json: out of memory\n", stderr);
    abort();
}

//  jansson returns NULL only when malloc fails once its input is valid.
static json_t *
s_alive(json_t *value)
{
    if (!value)
        s_out_of_memory();
    return value;
}

//  Writes a one-line reason: jansson quotes input near the error, and input
//  may hold control characters that would break a log line.
static void
s_set_error(char *error, size_t error_size, const char *format, ...)
{
    if (!error || error_size == 0)
        return;
    va_list args;
    va_start(args, format);
    vsnprintf(error, error_size, format, args);
    va_end(args);
    for (char *c = error; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = ' ';
}

//  ---------------------------------------------------------------------
//  JSON -> MessagePack

//  sbuffer fails only when realloc does.
static int
s_write(void *data, const char *buf, size_t len)
{
    if (msgpack_sbuffer_write(data, buf, len) != 0)
        s_out_of_memory();
    return 0;
}

static const char *s_pack_json(msgpack_packer *packer, json_t *value, int depth);

static const char *
s_pack_container(msgpack_packer *packer, json_t *value, int depth)
{
    if (depth >= ZM_JSON_DEPTH_MAX)
        return ZM_JSON_DEPTH_TEXT;
    const char *reason = NULL;
    if (json_is_array(value)) {
        if (json_array_size(value) > UINT32_MAX)
            return "array of more than 2^32-1 items";
        msgpack_pack_array(packer, (uint32_t)json_array_size(value));
        size_t index;
        json_t *item;
        json_array_foreach(value, index, item)
        {
            if ((reason = s_pack_json(packer, item, depth + 1)))
                return reason;
        }
        return NULL;
    }
    if (json_object_size(value) > UINT32_MAX)
        return "object of more than 2^32-1 members";
    msgpack_pack_map(packer, (uint32_t)json_object_size(value));
    const char *key;
    size_t key_len;
    json_t *member;
    json_object_keylen_foreach(value, key, key_len, member)
    {
        msgpack_pack_str(packer, key_len);
        msgpack_pack_str_body(packer, key, key_len);
        if ((reason = s_pack_json(packer, member, depth + 1)))
            return reason;
    }
    return NULL;
}

//  Packs value, which has depth containers around it. Returns NULL, or the
//  reason it cannot be packed (the packer then holds a partial encoding).
static const char *
s_pack_json(msgpack_packer *packer, json_t *value, int depth)
{
    switch (json_typeof(value)) {
    case JSON_OBJECT:
    case JSON_ARRAY:
        return s_pack_container(packer, value, depth);
    case JSON_STRING:
        msgpack_pack_str(packer, json_string_length(value));
        msgpack_pack_str_body(packer, json_string_value(value), json_string_length(value));
        return NULL;
    case JSON_INTEGER:
        msgpack_pack_int64(packer, json_integer_value(value)); //  smallest encoding
        return NULL;
    case JSON_REAL:
        msgpack_pack_double(packer, json_real_value(value));
        return NULL;
    case JSON_TRUE:
        msgpack_pack_true(packer);
        return NULL;
    case JSON_FALSE:
        msgpack_pack_false(packer);
        return NULL;
    case JSON_NULL:
        msgpack_pack_nil(packer);
        return NULL;
    }
    return "unknown JSON type"; //  not reached: the switch covers json_type
}

int
zm_json_to_msgpack(const char *text, size_t length, char **data_p, size_t *size_p, char *error,
                   size_t error_size)
{
    assert(text);
    assert(data_p);
    assert(size_p);
    //  Duplicate keys are refused rather than silently keeping the last one:
    //  the sender meant something, and we cannot tell what.
    json_error_t parse_error;
    json_t *root = json_loadb(
        text, length, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &parse_error);
    if (!root) {
        if (json_error_code(&parse_error) == json_error_out_of_memory)
            s_out_of_memory();
        s_set_error(error, error_size, "bad JSON at line %d column %d: %s", parse_error.line,
                    parse_error.column, parse_error.text);
        return ZMESH_EINVAL;
    }
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init(&buffer);
    msgpack_packer packer;
    msgpack_packer_init(&packer, &buffer, s_write);
    const char *reason = s_pack_json(&packer, root, 0);
    json_decref(root);
    if (reason) {
        msgpack_sbuffer_destroy(&buffer);
        s_set_error(error, error_size, "bad JSON: %s", reason);
        return ZMESH_EINVAL;
    }
    *size_p = buffer.size;
    *data_p = msgpack_sbuffer_release(&buffer);
    s_set_error(error, error_size, "%s", "");
    return ZMESH_OK;
}

//  ---------------------------------------------------------------------
//  MessagePack -> JSON

//  Records the first failure (inner ones are the precise ones) and returns
//  NULL so callers can write `return s_fail(...)`.
static json_t *
s_fail(reader_t *self, const char *reason)
{
    if (!self->reason) {
        self->reason = reason;
        self->failed_at = self->item;
    }
    return NULL;
}

//  Returns the next bytes and moves past them, or NULL if fewer are left.
//  The length is 64-bit so a 32-bit size_t cannot truncate a claimed length.
static const uint8_t *
s_take(reader_t *self, uint64_t bytes)
{
    if (bytes > self->size - self->offset) {
        s_fail(self, "truncated");
        return NULL;
    }
    const uint8_t *start = self->data + self->offset;
    self->offset += (size_t)bytes;
    return start;
}

//  Reads a big-endian unsigned integer of width bytes (1, 2, 4 or 8).
static bool
s_take_uint(reader_t *self, size_t width, uint64_t *value_p)
{
    const uint8_t *bytes = s_take(self, width);
    if (!bytes)
        return false;
    uint64_t value = 0;
    for (size_t index = 0; index < width; index++)
        value = value << 8 | bytes[index];
    *value_p = value;
    return true;
}

//  Strict UTF-8 (RFC 3629): no overlong forms, surrogates or code points
//  past U+10FFFF. jansson's encoder trusts its strings, so this is the gate.
static bool
s_utf8_valid(const uint8_t *bytes, size_t length)
{
    size_t index = 0;
    while (index < length) {
        uint8_t lead = bytes[index];
        size_t extra;
        uint32_t point, lowest;
        if (lead < 0x80) {
            index++;
            continue;
        }
        if ((lead & 0xe0) == 0xc0)
            extra = 1, point = lead & 0x1f, lowest = 0x80;
        else if ((lead & 0xf0) == 0xe0)
            extra = 2, point = lead & 0x0f, lowest = 0x800;
        else if ((lead & 0xf8) == 0xf0)
            extra = 3, point = lead & 0x07, lowest = 0x10000;
        else
            return false;
        if (extra >= length - index)
            return false;
        for (size_t next = 1; next <= extra; next++) {
            if ((bytes[index + next] & 0xc0) != 0x80)
                return false;
            point = point << 6 | (bytes[index + next] & 0x3f);
        }
        if (point < lowest || point > 0x10ffff || (point >= 0xd800 && point <= 0xdfff))
            return false;
        index += extra + 1;
    }
    return true;
}

static json_t *
s_read_str(reader_t *self, uint64_t length)
{
    const uint8_t *bytes = s_take(self, length);
    if (!bytes)
        return NULL;
    if (!s_utf8_valid(bytes, (size_t)length))
        return s_fail(self, "str is not valid UTF-8");
    return s_alive(json_stringn_nocheck((const char *)bytes, (size_t)length));
}

//  Reads length bytes as a base64 (RFC 4648, padded) JSON string.
static json_t *
s_read_base64(reader_t *self, uint64_t length)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const uint8_t *bytes = s_take(self, length);
    if (!bytes)
        return NULL;
    size_t size = (size_t)length;
    size_t chars = (size + 2) / 3 * 4;
    char *text = malloc(chars + 1);
    if (!text)
        s_out_of_memory();
    char *out = text;
    for (size_t index = 0; index < size; index += 3) {
        uint32_t group = (uint32_t)bytes[index] << 16;
        if (index + 1 < size)
            group |= (uint32_t)bytes[index + 1] << 8;
        if (index + 2 < size)
            group |= bytes[index + 2];
        *out++ = alphabet[group >> 18 & 63];
        *out++ = alphabet[group >> 12 & 63];
        *out++ = index + 1 < size ? alphabet[group >> 6 & 63] : '=';
        *out++ = index + 2 < size ? alphabet[group & 63] : '=';
    }
    json_t *string = s_alive(json_stringn_nocheck(text, chars));
    free(text);
    return string;
}

//  bin -> {"$bin":"<base64>"}; ext (type byte, then data) ->
//  {"$ext":<type>,"$bin":"<base64>"}.
static json_t *
s_read_blob(reader_t *self, uint64_t length, bool is_ext)
{
    json_t *object = s_alive(json_object());
    if (is_ext) {
        const uint8_t *type = s_take(self, 1);
        if (!type) {
            json_decref(object);
            return NULL;
        }
        json_t *number = s_alive(json_integer((int8_t)*type)); //  ext types are signed
        if (json_object_set_new_nocheck(object, "$ext", number) != 0)
            s_out_of_memory();
    }
    json_t *base64 = s_read_base64(self, length);
    if (!base64) {
        json_decref(object);
        return NULL;
    }
    if (json_object_set_new_nocheck(object, "$bin", base64) != 0)
        s_out_of_memory();
    return object;
}

//  Returns a non-str key's JSON text as a JSON string, or NULL if that text
//  is out of proportion to the key's encoded bytes (see ZM_JSON_KEY_RATIO).
static json_t *
s_key_text(reader_t *self, json_t *key, size_t encoded)
{
    char *text = json_dumps(key, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
    if (!text)
        s_out_of_memory();
    size_t length = strlen(text);
    json_t *name = NULL;
    //  length > RATIO * encoded + SLACK, written so it cannot overflow.
    if (length > ZM_JSON_KEY_SLACK &&
        (length - ZM_JSON_KEY_SLACK + ZM_JSON_KEY_RATIO - 1) / ZM_JSON_KEY_RATIO > encoded)
        s_fail(self, "map key too long as JSON text");
    else
        name = s_alive(json_stringn_nocheck(text, length));
    free(text);
    return name;
}

//  Reads one key and its value into object. Keys that are not str become
//  their JSON text; a key equal to an earlier one fails, since JSON objects
//  cannot hold both and dropping one would lose data silently.
static bool
s_read_member(reader_t *self, json_t *object, int depth)
{
    size_t key_start = self->offset;
    json_t *key = s_read_value(self, depth);
    if (!key)
        return false;
    if (!json_is_string(key)) {
        json_t *text = s_key_text(self, key, self->offset - key_start);
        json_decref(key);
        if (!text)
            return false;
        key = text;
    }
    const char *name = json_string_value(key);
    size_t name_len = json_string_length(key);
    bool ok = false;
    if (json_object_getn(object, name, name_len)) {
        self->item = key_start;
        s_fail(self, "duplicate map key");
    } else {
        json_t *value = s_read_value(self, depth);
        if (value) {
            if (json_object_setn_new_nocheck(object, name, name_len, value) != 0)
                s_out_of_memory();
            ok = true;
        }
    }
    json_decref(key);
    return ok;
}

//  Reads an array (is_map false) or map of count items. Every item takes at
//  least one byte, so a count beyond the bytes left is refused before any
//  allocation; depth counts the containers around this one.
static json_t *
s_read_container(reader_t *self, uint64_t count, bool is_map, int depth)
{
    if (depth >= ZM_JSON_DEPTH_MAX)
        return s_fail(self, ZM_JSON_DEPTH_TEXT);
    uint64_t left = self->size - self->offset;
    if (count > (is_map ? left / 2 : left))
        return s_fail(self, is_map ? "map count exceeds the bytes left"
                                   : "array count exceeds the bytes left");
    json_t *container = s_alive(is_map ? json_object() : json_array());
    for (uint64_t index = 0; index < count; index++) {
        if (is_map) {
            if (!s_read_member(self, container, depth + 1)) {
                json_decref(container);
                return NULL;
            }
            continue;
        }
        json_t *item = s_read_value(self, depth + 1);
        if (!item) {
            json_decref(container);
            return NULL;
        }
        if (json_array_append_new(container, item) != 0)
            s_out_of_memory();
    }
    return container;
}

static json_t *
s_read_float(reader_t *self, size_t width)
{
    uint64_t bits;
    if (!s_take_uint(self, width, &bits))
        return NULL;
    double value;
    if (width == 4) {
        uint32_t bits32 = (uint32_t)bits;
        float value32;
        memcpy(&value32, &bits32, sizeof value32);
        value = value32;
    } else
        memcpy(&value, &bits, sizeof value);
    if (!isfinite(value))
        return s_fail(self, "NaN or infinity has no JSON form");
    return s_alive(json_real(value));
}

//  float32/64 (0xca-0xcb), uint8-64 (0xcc-0xcf) and int8-64 (0xd0-0xd3).
static json_t *
s_read_number(reader_t *self, uint8_t tag)
{
    if (tag <= 0xcb)
        return s_read_float(self, tag == 0xca ? 4 : 8);
    bool is_signed = tag >= 0xd0;
    size_t width = (size_t)1 << (tag - (is_signed ? 0xd0 : 0xcc));
    uint64_t bits;
    if (!s_take_uint(self, width, &bits))
        return NULL;
    if (!is_signed) {
        if (bits > INT64_MAX)
            return s_alive(json_real((double)bits)); //  JSON integers are int64 here
        return s_alive(json_integer((json_int_t)bits));
    }
    int64_t value = width == 1   ? (int8_t)bits
                    : width == 2 ? (int16_t)bits
                    : width == 4 ? (int32_t)bits
                                 : (int64_t)bits;
    return s_alive(json_integer(value));
}

//  The types whose length or count follows the tag in 1, 2 or 4 bytes:
//  bin8-32 (0xc4-0xc6), ext8-32 (0xc7-0xc9), str8-32 (0xd9-0xdb),
//  array16-32 (0xdc-0xdd) and map16-32 (0xde-0xdf).
static json_t *
s_read_sized(reader_t *self, uint8_t tag, int depth)
{
    size_t width;
    if (tag <= 0xc9)
        width = (size_t)1 << (tag - (tag <= 0xc6 ? 0xc4 : 0xc7));
    else if (tag <= 0xdb)
        width = (size_t)1 << (tag - 0xd9);
    else
        width = tag == 0xdc || tag == 0xde ? 2 : 4;
    uint64_t length;
    if (!s_take_uint(self, width, &length))
        return NULL;
    if (tag <= 0xc9)
        return s_read_blob(self, length, tag >= 0xc7);
    if (tag <= 0xdb)
        return s_read_str(self, length);
    return s_read_container(self, length, tag >= 0xde, depth);
}

//  Reads one object with depth containers around it; NULL once reason is set.
static json_t *
s_read_value(reader_t *self, int depth)
{
    self->item = self->offset;
    const uint8_t *tag_p = s_take(self, 1);
    if (!tag_p)
        return NULL;
    uint8_t tag = *tag_p;
    if (tag <= 0x7f)
        return s_alive(json_integer(tag)); //  positive fixint
    if (tag <= 0x8f)
        return s_read_container(self, tag & 0x0f, true, depth);
    if (tag <= 0x9f)
        return s_read_container(self, tag & 0x0f, false, depth);
    if (tag <= 0xbf)
        return s_read_str(self, tag & 0x1f);
    if (tag >= 0xe0)
        return s_alive(json_integer((int8_t)tag)); //  negative fixint
    if (tag == 0xc0)
        return json_null();
    if (tag == 0xc1)
        return s_fail(self, "0xc1 is not a MessagePack type");
    if (tag == 0xc2 || tag == 0xc3)
        return tag == 0xc3 ? json_true() : json_false();
    if (tag >= 0xca && tag <= 0xd3)
        return s_read_number(self, tag);
    if (tag >= 0xd4 && tag <= 0xd8)
        return s_read_blob(self, (uint64_t)1 << (tag - 0xd4), true); //  fixext1-16
    return s_read_sized(self, tag, depth);
}

int
zm_msgpack_to_json(const void *data, size_t size, char **text_p, char *error, size_t error_size)
{
    assert(data || size == 0);
    assert(text_p);
    reader_t reader = {.data = data, .size = size};
    json_t *root = s_read_value(&reader, 0);
    if (root && reader.offset != size) {
        //  msgpack_unpack_next would accept this; a frame holds one object.
        reader.item = reader.offset;
        s_fail(&reader, "trailing bytes after the object");
        json_decref(root);
        root = NULL;
    }
    if (!root) {
        s_set_error(error, error_size, "bad MessagePack at byte %zu: %s", reader.failed_at,
                    reader.reason);
        return ZMESH_EINVAL;
    }
    char *text = json_dumps(root, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!text)
        s_out_of_memory();
    *text_p = text;
    s_set_error(error, error_size, "%s", "");
    return ZMESH_OK;
}
