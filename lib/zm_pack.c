//  zm_pack - a MessagePack validator and header cursor that never allocate.
//
//  msgpack-c's unpacker allocates from an array or map header's claimed count
//  before it reads a single element, ignores bytes after the first object and
//  reports deep nesting as out-of-memory. Untrusted frames therefore pass
//  through this walker first: it checks every claimed length against the
//  bytes left, bounds depth with an explicit stack (no recursion), and
//  requires the object to end exactly at the end of the frame.
#include "zm_pack.h"

#include "zmesh.h"

#include <string.h>

//  Big-endian loads; the caller has checked the bytes are there.
static uint64_t
s_load(const uint8_t *data, int width)
{
    uint64_t value = 0;
    for (int i = 0; i < width; i++)
        value = (value << 8) | data[i];
    return value;
}

//  Classifies the object whose first byte is at p. Sets *skip_p to the bytes
//  it takes besides its children and *children_p to the number of child
//  objects that follow (array items, or twice the map pairs). Returns false
//  on an invalid byte or a header cut short.
static bool
s_header(const uint8_t *p, size_t left, uint64_t *skip_p, uint64_t *children_p)
{
    uint8_t b = p[0];
    *children_p = 0;
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
        *skip_p = 1;                                //  fixint, nil, bool
        return true;
    }
    if ((b & 0xe0) == 0xa0) {                       //  fixstr
        *skip_p = 1 + (uint64_t) (b & 0x1f);
        return true;
    }
    if ((b & 0xf0) == 0x90 || (b & 0xf0) == 0x80) { //  fixarray, fixmap
        *skip_p = 1;
        *children_p = (uint64_t) (b & 0x0f) * ((b & 0xf0) == 0x80 ? 2 : 1);
        return true;
    }
    int width = 0;          //  bytes of the length field
    uint64_t fixed = 0;     //  payload bytes with no length field
    int kind = 0;           //  0 scalar, 1 bytes (str/bin), 2 ext, 3 array, 4 map
    switch (b) {
    case 0xcc: case 0xd0: fixed = 1; break;
    case 0xcd: case 0xd1: fixed = 2; break;
    case 0xce: case 0xd2: case 0xca: fixed = 4; break;
    case 0xcf: case 0xd3: case 0xcb: fixed = 8; break;
    case 0xd4: fixed = 2; break;                    //  fixext 1..16: type + data
    case 0xd5: fixed = 3; break;
    case 0xd6: fixed = 5; break;
    case 0xd7: fixed = 9; break;
    case 0xd8: fixed = 17; break;
    case 0xd9: case 0xc4: width = 1; kind = 1; break;
    case 0xda: case 0xc5: width = 2; kind = 1; break;
    case 0xdb: case 0xc6: width = 4; kind = 1; break;
    case 0xc7: width = 1; kind = 2; break;
    case 0xc8: width = 2; kind = 2; break;
    case 0xc9: width = 4; kind = 2; break;
    case 0xdc: width = 2; kind = 3; break;
    case 0xdd: width = 4; kind = 3; break;
    case 0xde: width = 2; kind = 4; break;
    case 0xdf: width = 4; kind = 4; break;
    default: return false;                          //  0xc1: never used
    }
    if (left < 1 + (uint64_t) width)
        return false;
    uint64_t length = s_load(p + 1, width);
    *skip_p = 1 + (uint64_t) width + fixed;
    if (kind == 1)
        *skip_p += length;
    else if (kind == 2)
        *skip_p += 1 + length;                      //  type byte + data
    else if (kind == 3)
        *children_p = length;
    else if (kind == 4)
        *children_p = length * 2;
    return true;
}

int
zm_pack_check(const void *data, size_t size, int max_depth)
{
    if (max_depth <= 0 || max_depth > ZM_PACK_DEPTH_MAX)
        max_depth = ZM_PACK_DEPTH_MAX;
    if (!data || size == 0)
        return ZMESH_EINVAL;
    //  pending[d] = child objects still to read at depth d.
    uint64_t pending[ZM_PACK_DEPTH_MAX + 2];
    int depth = 0;
    pending[0] = 1;
    const uint8_t *p = data;
    const uint8_t *end = p + size;
    while (depth >= 0) {
        if (pending[depth] == 0) {
            depth--;
            continue;
        }
        if (p >= end)
            return ZMESH_EINVAL;                    //  truncated
        uint64_t skip, children;
        size_t left = (size_t) (end - p);
        bool container = (*p & 0xe0) == 0x80 || (*p >= 0xdc && *p <= 0xdf);
        if (!s_header(p, left, &skip, &children) || skip > left)
            return ZMESH_EINVAL;
        p += skip;
        pending[depth]--;
        //  A container at index depth is nesting level depth + 1 (a scalar
        //  is level 0), whether or not it holds anything.
        if (container && depth + 1 > max_depth)
            return ZMESH_EINVAL;
        if (children > 0) {
            //  Every child takes at least one byte: a count larger than the
            //  bytes left is a lie, refused before anyone allocates for it.
            if (children > (uint64_t) (end - p))
                return ZMESH_EINVAL;
            pending[++depth] = children;
        }
    }
    return p == end ? ZMESH_OK : ZMESH_EINVAL;
}

void
zm_reader_init(zm_reader_t *self, const void *data, size_t size)
{
    self->cursor = data;
    self->end = self->cursor + size;
    self->ok = data != NULL;
}

static bool
s_fail(zm_reader_t *self)
{
    self->ok = false;
    return false;
}

//  Reads width big-endian bytes, if that many are left.
static bool
s_take(zm_reader_t *self, int width, uint64_t *value_p)
{
    if (!self->ok || (size_t) (self->end - self->cursor) < (size_t) width)
        return s_fail(self);
    *value_p = s_load(self->cursor, width);
    self->cursor += width;
    return true;
}

bool
zm_reader_array(zm_reader_t *self, uint32_t *count_p)
{
    uint64_t b, count;
    if (!s_take(self, 1, &b))
        return false;
    if ((b & 0xf0) == 0x90)
        count = b & 0x0f;
    else if (b == 0xdc) {
        if (!s_take(self, 2, &count))
            return false;
    }
    else if (b == 0xdd) {
        if (!s_take(self, 4, &count))
            return false;
    }
    else
        return s_fail(self);
    *count_p = (uint32_t) count;
    return true;
}

bool
zm_reader_uint(zm_reader_t *self, uint64_t *value_p)
{
    uint64_t b, value;
    if (!s_take(self, 1, &b))
        return false;
    int width = 0;
    bool is_signed = false;
    if (b <= 0x7f) {
        *value_p = b;
        return true;
    }
    switch (b) {
    case 0xcc: width = 1; break;
    case 0xcd: width = 2; break;
    case 0xce: width = 4; break;
    case 0xcf: width = 8; break;
    case 0xd0: width = 1; is_signed = true; break;
    case 0xd1: width = 2; is_signed = true; break;
    case 0xd2: width = 4; is_signed = true; break;
    case 0xd3: width = 8; is_signed = true; break;
    default: return s_fail(self);
    }
    if (!s_take(self, width, &value))
        return false;
    //  A signed encoding is fine for a non-negative value (some packers
    //  emit int8 for small numbers); a set sign bit is not.
    if (is_signed && (value >> (width * 8 - 1)) & 1)
        return s_fail(self);
    *value_p = value;
    return true;
}

bool
zm_reader_str(zm_reader_t *self, const char **data_p, size_t *size_p)
{
    uint64_t b, size;
    if (!s_take(self, 1, &b))
        return false;
    if ((b & 0xe0) == 0xa0)
        size = b & 0x1f;
    else if (b == 0xd9 || b == 0xda || b == 0xdb) {
        if (!s_take(self, b == 0xd9 ? 1 : b == 0xda ? 2 : 4, &size))
            return false;
    }
    else
        return s_fail(self);
    if ((uint64_t) (self->end - self->cursor) < size)
        return s_fail(self);
    *data_p = (const char *) self->cursor;
    *size_p = (size_t) size;
    self->cursor += size;
    return true;
}

bool
zm_reader_done(const zm_reader_t *self)
{
    return self->ok && self->cursor == self->end;
}

void
zm_writer_init(zm_writer_t *self, void *buffer, size_t max_size)
{
    self->data = buffer;
    self->size = 0;
    self->max_size = max_size;
    self->ok = true;
}

//  Writes a type byte followed by width big-endian bytes of value.
static void
s_put(zm_writer_t *self, uint8_t type, int width, uint64_t value)
{
    if (!self->ok || self->max_size - self->size < 1 + (size_t) width) {
        self->ok = false;
        return;
    }
    self->data[self->size++] = type;
    for (int i = width - 1; i >= 0; i--)
        self->data[self->size++] = (uint8_t) (value >> (i * 8));
}

void
zm_writer_array(zm_writer_t *self, uint32_t count)
{
    if (count < 16)
        s_put(self, (uint8_t) (0x90 | count), 0, 0);
    else if (count <= 0xffff)
        s_put(self, 0xdc, 2, count);
    else
        s_put(self, 0xdd, 4, count);
}

void
zm_writer_uint(zm_writer_t *self, uint64_t value)
{
    if (value <= 0x7f)
        s_put(self, (uint8_t) value, 0, 0);
    else if (value <= 0xff)
        s_put(self, 0xcc, 1, value);
    else if (value <= 0xffff)
        s_put(self, 0xcd, 2, value);
    else if (value <= 0xffffffffu)
        s_put(self, 0xce, 4, value);
    else
        s_put(self, 0xcf, 8, value);
}

void
zm_writer_str(zm_writer_t *self, const char *data, size_t size)
{
    if (size < 32)
        s_put(self, (uint8_t) (0xa0 | size), 0, 0);
    else if (size <= 0xff)
        s_put(self, 0xd9, 1, size);
    else if (size <= 0xffff)
        s_put(self, 0xda, 2, size);
    else
        s_put(self, 0xdb, 4, size);
    if (!self->ok || self->max_size - self->size < size) {
        self->ok = false;
        return;
    }
    memcpy(self->data + self->size, data, size);
    self->size += size;
}
