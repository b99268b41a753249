//  test_pack.c - unit tests of zm_pack and the public payload helpers: the
//  validator accepts one object of every MessagePack type and width and
//  refuses truncation, trailing bytes, lying counts and deep nesting without
//  recursing or reading a byte past the buffer (inputs are copied into
//  exactly sized heap blocks so ASan sees any over-read); the header reader
//  and the bounded writer round-trip every boundary value, and the writer
//  never writes past its capacity. It must not test zm_proto (test_proto.c).

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "zm_pack.h"
#include "zmesh.h"

//  A byte string literal and its length; literals may hold NUL bytes.
#define BYTES(literal) literal, sizeof(literal) - 1
#define CASE(name, literal) {name, BYTES(literal)}
#define COUNT(array) (sizeof(array) / sizeof((array)[0]))

typedef struct {
    const char *name;       //  printed on failure
    const char *data;       //  MessagePack bytes
    size_t size;
} s_case_t;

//  Returns an exactly sized heap copy of data, so ASan flags any read past it.
static uint8_t *
s_dup(const void *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    assert_non_null(copy);
    if (size)
        memcpy(copy, data, size);
    return copy;
}

//  Runs zm_pack_check on an exact copy of data, checks that the public
//  zmesh_msgpack_check agrees, and returns the result.
static int
s_check(const void *data, size_t size, int max_depth)
{
    uint8_t *copy = s_dup(data, size);
    int rc = zm_pack_check(copy, size, max_depth);
    int public_rc = zmesh_msgpack_check(copy, size, max_depth);
    free(copy);
    if (rc != public_rc)
        fail_msg("zm_pack_check %d but zmesh_msgpack_check %d", rc, public_rc);
    return rc;
}

static void
s_assert_cases(const s_case_t *cases, size_t count, int expected)
{
    for (size_t index = 0; index < count; index++) {
        int rc = s_check(cases[index].data, cases[index].size, 0);
        if (rc != expected)
            fail_msg("%s: zm_pack_check returned %d, expected %d", cases[index].name, rc,
                     expected);
    }
}

//  Writes type then width big-endian bytes of value at out; returns the bytes written.
static size_t
s_put_header(uint8_t *out, uint8_t type, int width, uint64_t value)
{
    out[0] = type;
    for (int index = 0; index < width; index++)
        out[1 + index] = (uint8_t) (value >> (8 * (width - 1 - index)));
    return 1 + (size_t) width;
}

//  Returns count copies of open followed by tail, malloc'ed; *size_p gets the size.
static uint8_t *
s_nest(const char *open, size_t open_size, size_t count, const char *tail, size_t tail_size,
       size_t *size_p)
{
    size_t size = open_size * count + tail_size;
    uint8_t *data = malloc(size);
    assert_non_null(data);
    for (size_t index = 0; index < count; index++)
        memcpy(data + index * open_size, open, open_size);
    memcpy(data + open_size * count, tail, tail_size);
    *size_p = size;
    return data;
}

//  Asserts the depth verdict for count levels of open around tail.
static void
s_assert_nested(const char *open, size_t open_size, size_t count, const char *tail,
                size_t tail_size, int max_depth, int expected)
{
    size_t size;
    uint8_t *data = s_nest(open, open_size, count, tail, tail_size, &size);
    int rc = zm_pack_check(data, size, max_depth);
    free(data);
    if (rc != expected)
        fail_msg("%zu levels of 0x%02x, max_depth %d: got %d, expected %d", count,
                 (uint8_t) open[0], max_depth, rc, expected);
}

// clang-format off
static const s_case_t s_every_type[] = {
    CASE("nil", "\xc0"),
    CASE("false", "\xc2"),
    CASE("true", "\xc3"),
    CASE("positive fixint 0", "\x00"),
    CASE("positive fixint 127", "\x7f"),
    CASE("negative fixint -1", "\xff"),
    CASE("negative fixint -32", "\xe0"),
    CASE("uint 8", "\xcc\xff"),
    CASE("uint 16", "\xcd\xff\xff"),
    CASE("uint 32", "\xce\xff\xff\xff\xff"),
    CASE("uint 64", "\xcf\xff\xff\xff\xff\xff\xff\xff\xff"),
    CASE("int 8", "\xd0\x80"),
    CASE("int 16", "\xd1\x80\x00"),
    CASE("int 32", "\xd2\x80\x00\x00\x00"),
    CASE("int 64", "\xd3\x80\x00\x00\x00\x00\x00\x00\x00"),
    CASE("float 32", "\xca\x3f\xc0\x00\x00"),
    CASE("float 64", "\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00"),
    CASE("fixstr empty", "\xa0"),
    CASE("fixstr 3", "\xa3" "abc"),
    CASE("fixstr 31", "\xbf" "0123456789012345678901234567890"),
    CASE("str 8 empty", "\xd9\x00"),
    CASE("str 8", "\xd9\x03" "abc"),
    CASE("str 16", "\xda\x00\x03" "abc"),
    CASE("str 32", "\xdb\x00\x00\x00\x03" "abc"),
    CASE("bin 8 empty", "\xc4\x00"),
    CASE("bin 8", "\xc4\x02\x00\xff"),
    CASE("bin 16", "\xc5\x00\x02\x00\xff"),
    CASE("bin 32", "\xc6\x00\x00\x00\x02\x00\xff"),
    CASE("fixarray empty", "\x90"),
    CASE("fixarray 2", "\x92\x01\xc0"),
    CASE("fixarray 15", "\x9f\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"),
    CASE("array 16 empty", "\xdc\x00\x00"),
    CASE("array 16", "\xdc\x00\x02\x01\xc0"),
    CASE("array 32", "\xdd\x00\x00\x00\x02\x01\xc0"),
    CASE("fixmap empty", "\x80"),
    CASE("fixmap 1", "\x81\xa1" "k" "\x01"),
    CASE("fixmap with container key", "\x81\x92\x01\x02\x80"),
    CASE("map 16 empty", "\xde\x00\x00"),
    CASE("map 16", "\xde\x00\x01\x01\x02"),
    CASE("map 32", "\xdf\x00\x00\x00\x01\x01\x02"),
    CASE("fixext 1", "\xd4\x01\xaa"),
    CASE("fixext 2", "\xd5\x01\xaa\xbb"),
    CASE("fixext 4", "\xd6\xff\x00\x01\x02\x03"),
    CASE("fixext 8", "\xd7\x01\x00\x01\x02\x03\x04\x05\x06\x07"),
    CASE("fixext 16", "\xd8\x01" "0123456789abcdef"),
    CASE("ext 8 empty", "\xc7\x00\x01"),
    CASE("ext 8", "\xc7\x03\x01" "abc"),
    CASE("ext 16", "\xc8\x00\x03\x01" "abc"),
    CASE("ext 32", "\xc9\x00\x00\x00\x03\x01" "abc"),
    CASE("timestamp 96", "\xc7\x0c\xff\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"),
};

//  A map of 7 pairs that holds most types and widths, for the truncation loop.
static const char s_nested[] =
    "\x87"
    "\xa1" "a" "\xdc\x00\x03" "\xcd\x01\x00" "\xd9\x02" "hi" "\xc4\x01\x00"
    "\xa1" "b" "\xde\x00\x01" "\xc3" "\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00"
    "\xa1" "c" "\xc8\x00\x02\x05" "xy"
    "\xa1" "d" "\xdd\x00\x00\x00\x02" "\x91\x90" "\xd0\x80"
    "\xa1" "e" "\xd8\x01" "0123456789abcdef"
    "\xa1" "f" "\xdf\x00\x00\x00\x01" "\xd3\x00\x00\x00\x00\x00\x00\x00\x01"
        "\xdb\x00\x00\x00\x01" "z"
    "\xa1" "g" "\xca\x00\x00\x00\x00";
// clang-format on

static void
test_pack_check_accepts_every_type_and_width(void **state)
{
    (void) state;
    s_assert_cases(s_every_type, COUNT(s_every_type), ZMESH_OK);
    assert_int_equal(s_check(BYTES(s_nested), 0), ZMESH_OK);
}

//  The 16- and 32-bit lengths and counts, filled for real: nothing is taken on trust.
static void
test_pack_check_accepts_long_encodings(void **state)
{
    (void) state;
    const struct {
        uint8_t type;
        int width;
        uint64_t length;    //  bytes, or elements (array), or pairs (map)
        size_t item_size;   //  bytes per length unit
    } shapes[] = {
        {0xd9, 1, 255, 1},   {0xda, 2, 256, 1},  {0xda, 2, 65535, 1}, {0xdb, 4, 65536, 1},
        {0xc4, 1, 255, 1},   {0xc5, 2, 65535, 1}, {0xc6, 4, 65536, 1}, {0xdc, 2, 16, 1},
        {0xdc, 2, 65535, 1}, {0xdd, 4, 65536, 1}, {0xde, 2, 16, 2},    {0xde, 2, 65535, 2},
        {0xdf, 4, 65536, 2},
    };
    for (size_t index = 0; index < COUNT(shapes); index++) {
        size_t body = (size_t) shapes[index].length * shapes[index].item_size;
        uint8_t *data = malloc(5 + body);
        assert_non_null(data);
        size_t head = s_put_header(data, shapes[index].type, shapes[index].width,
                                   shapes[index].length);
        memset(data + head, 0x01, body);     //  a byte of text, or a fixint item
        if (zm_pack_check(data, head + body, 0) != ZMESH_OK)
            fail_msg("type 0x%02x length %llu refused", shapes[index].type,
                     (unsigned long long) shapes[index].length);
        assert_int_equal(zm_pack_check(data, head + body - 1, 0), ZMESH_EINVAL);
        free(data);
    }
    //  ext 16 and ext 32 carry a type byte before the data.
    uint8_t *ext = calloc(1, 6 + 65536);
    assert_non_null(ext);
    size_t head = s_put_header(ext, 0xc8, 2, 300) + 1;
    assert_int_equal(zm_pack_check(ext, head + 300, 0), ZMESH_OK);
    head = s_put_header(ext, 0xc9, 4, 65536) + 1;
    assert_int_equal(zm_pack_check(ext, head + 65536, 0), ZMESH_OK);
    assert_int_equal(zm_pack_check(ext, head + 65535, 0), ZMESH_EINVAL);
    free(ext);
}

static void
test_pack_check_rejects_empty_and_null(void **state)
{
    (void) state;
    assert_int_equal(zm_pack_check(NULL, 0, 0), ZMESH_EINVAL);
    assert_int_equal(zm_pack_check(NULL, 5, 0), ZMESH_EINVAL);
    assert_int_equal(zmesh_msgpack_check(NULL, 0, 0), ZMESH_EINVAL);
    assert_int_equal(s_check("\xc0", 0, 0), ZMESH_EINVAL);
}

static void
test_pack_check_rejects_never_used_byte(void **state)
{
    (void) state;
    static const s_case_t cases[] = {
        CASE("0xc1 alone", "\xc1"),
        CASE("0xc1 in an array", "\x92\x01\xc1"),
        CASE("0xc1 as a map key", "\x81\xc1\x01"),
        CASE("0xc1 as a map value", "\x81\x01\xc1"),
    };
    s_assert_cases(cases, COUNT(cases), ZMESH_EINVAL);
}

static void
test_pack_check_rejects_trailing_bytes_and_two_objects(void **state)
{
    (void) state;
    static const s_case_t cases[] = {
        CASE("[1] then junk", "\x91\x01" "junk"),
        CASE("nil then a zero byte", "\xc0\x00"),
        CASE("two fixints", "\x01\x02"),
        CASE("two arrays", "\x91\x01\x91\x01"),
        CASE("two empty maps", "\x80\x80"),
        CASE("str then nil", "\xa1" "x" "\xc0"),
        CASE("array 16 holding fewer items than bytes", "\xdc\x00\x01\x01\x02"),
    };
    s_assert_cases(cases, COUNT(cases), ZMESH_EINVAL);
}

static void
test_pack_check_rejects_every_truncation(void **state)
{
    (void) state;
    size_t size = sizeof s_nested - 1;
    for (size_t cut = 0; cut < size; cut++)
        if (s_check(s_nested, cut, 0) != ZMESH_EINVAL)
            fail_msg("the encoding cut to %zu of %zu bytes was accepted", cut, size);
    for (size_t index = 0; index < COUNT(s_every_type); index++)
        for (size_t cut = 0; cut < s_every_type[index].size; cut++)
            if (s_check(s_every_type[index].data, cut, 0) != ZMESH_EINVAL)
                fail_msg("%s cut to %zu bytes was accepted", s_every_type[index].name, cut);
}

//  Each claims far more than follows; the check costs nothing and allocates nothing.
static void
test_pack_check_rejects_huge_claimed_counts(void **state)
{
    (void) state;
    static const s_case_t cases[] = {
        CASE("array 32 of 2^32-1", "\xdd\xff\xff\xff\xff"),
        CASE("map 32 of 2^32-1", "\xdf\xff\xff\xff\xff"),
        CASE("str 32 of 2^32-1", "\xdb\xff\xff\xff\xff"),
        CASE("bin 32 of 2^32-1", "\xc6\xff\xff\xff\xff"),
        CASE("ext 32 of 2^32-1", "\xc9\xff\xff\xff\xff\x01"),
        CASE("array 16 of 65535", "\xdc\xff\xff"),
        CASE("map 16 of 65535", "\xde\xff\xff"),
        CASE("str 16 of 65535", "\xda\xff\xff" "abc"),
        CASE("bin 16 of 65535", "\xc5\xff\xff" "abc"),
        CASE("ext 16 of 65535", "\xc8\xff\xff\x01" "abc"),
        CASE("str 8 of 255", "\xd9\xff" "abc"),
        CASE("fixstr of 31", "\xbf" "abc"),
        CASE("array 32 inside an array", "\x91\xdd\xff\xff\xff\xff\x01\x02"),
        CASE("map 16 of 3 pairs, 4 bytes", "\xde\x00\x03\x01\x02\x03\x04"),
        CASE("map 16 of 2 pairs, 3 bytes", "\xde\x00\x02\x01\x02\x03"),
        CASE("fixmap of 2 pairs, 3 bytes", "\x82\x01\x02\x03"),
    };
    s_assert_cases(cases, COUNT(cases), ZMESH_EINVAL);
    //  An array 32 of 65536 items followed by only 65535 of them.
    size_t size;
    uint8_t *data = s_nest("\x01", 1, 5 + 65535, "", 0, &size);
    s_put_header(data, 0xdd, 4, 65536);
    assert_int_equal(zm_pack_check(data, size, 0), ZMESH_EINVAL);
    s_put_header(data, 0xdd, 4, 65535);         //  the true count passes
    assert_int_equal(zm_pack_check(data, size, 0), ZMESH_OK);
    free(data);
}

static void
test_pack_check_bounds_depth_of_arrays(void **state)
{
    (void) state;
    //  A scalar is depth 0; each array around it adds one.
    s_assert_nested(BYTES("\x91"), 64, BYTES("\x01"), 64, ZMESH_OK);
    s_assert_nested(BYTES("\x91"), 64, BYTES("\x01"), 0, ZMESH_OK);
    s_assert_nested(BYTES("\x91"), 64, BYTES("\x01"), -1, ZMESH_OK);
    s_assert_nested(BYTES("\x91"), 65, BYTES("\x01"), 64, ZMESH_EINVAL);
    s_assert_nested(BYTES("\x91"), 65, BYTES("\x01"), 0, ZMESH_EINVAL);
    //  An empty array is depth 1: 64 of them nested is depth 64.
    s_assert_nested(BYTES("\x91"), 63, BYTES("\x90"), 64, ZMESH_OK);
    s_assert_nested(BYTES("\x91"), 64, BYTES("\x90"), 64, ZMESH_EINVAL);
    s_assert_nested(BYTES("\x91"), 64, BYTES("\x90"), 0, ZMESH_EINVAL);
    //  The 16- and 32-bit array headers count the same.
    s_assert_nested(BYTES("\xdc\x00\x01"), 64, BYTES("\x01"), 0, ZMESH_OK);
    s_assert_nested(BYTES("\xdc\x00\x01"), 65, BYTES("\x01"), 0, ZMESH_EINVAL);
    s_assert_nested(BYTES("\xdd\x00\x00\x00\x01"), 63, BYTES("\xdd\x00\x00\x00\x00"), 0,
                    ZMESH_OK);
    s_assert_nested(BYTES("\xdd\x00\x00\x00\x01"), 64, BYTES("\xdd\x00\x00\x00\x00"), 0,
                    ZMESH_EINVAL);
    //  max_depth 1 allows one level, max_depth 2 two.
    assert_int_equal(s_check(BYTES("\x01"), 1), ZMESH_OK);
    assert_int_equal(s_check(BYTES("\x91\x01"), 1), ZMESH_OK);
    assert_int_equal(s_check(BYTES("\x90"), 1), ZMESH_OK);
    assert_int_equal(s_check(BYTES("\x91\x91\x01"), 1), ZMESH_EINVAL);
    assert_int_equal(s_check(BYTES("\x91\x90"), 1), ZMESH_EINVAL);
    assert_int_equal(s_check(BYTES("\x91\x91\x01"), 2), ZMESH_OK);
    assert_int_equal(s_check(BYTES("\x91\x91\x91\x01"), 2), ZMESH_EINVAL);
}

static void
test_pack_check_bounds_depth_of_maps(void **state)
{
    (void) state;
    //  Nesting through values, and through keys.
    s_assert_nested(BYTES("\x81\x01"), 64, BYTES("\x01"), 0, ZMESH_OK);
    s_assert_nested(BYTES("\x81\x01"), 65, BYTES("\x01"), 0, ZMESH_EINVAL);
    s_assert_nested(BYTES("\x81\x01"), 63, BYTES("\x80"), 0, ZMESH_OK);
    s_assert_nested(BYTES("\x81\x01"), 64, BYTES("\x80"), 0, ZMESH_EINVAL);
    s_assert_nested(BYTES("\x81"), 64, BYTES("\x01\x01"), 0, ZMESH_EINVAL); //  cut short
    s_assert_nested(BYTES("\xde\x00\x01\x01"), 64, BYTES("\x01"), 0, ZMESH_OK);
    s_assert_nested(BYTES("\xdf\x00\x00\x00\x01\x01"), 65, BYTES("\x01"), 0, ZMESH_EINVAL);
    //  Keys: {{{1: 1}: 1}: 1} is 3 deep.
    assert_int_equal(s_check(BYTES("\x81\x81\x81\x01\x01\x01\x01"), 3), ZMESH_OK);
    assert_int_equal(s_check(BYTES("\x81\x81\x81\x01\x01\x01\x01"), 2), ZMESH_EINVAL);
    assert_int_equal(s_check(BYTES("\x81\x01\x80"), 1), ZMESH_EINVAL);
    assert_int_equal(s_check(BYTES("\x80"), 1), ZMESH_OK);
}

//  The walker climbs back out: siblings are measured from their own parent.
static void
test_pack_check_measures_depth_per_branch(void **state)
{
    (void) state;
    size_t deep_size, deeper_size;
    uint8_t *deep = s_nest("\x91", 1, 63, "\x01", 1, &deep_size);     //  depth 63
    uint8_t *deeper = s_nest("\x91", 1, 64, "\x01", 1, &deeper_size); //  depth 64
    uint8_t *data = malloc(1 + deep_size + deeper_size + 1);
    assert_non_null(data);
    //  [deep, deep, 1] is depth 64: fine.
    data[0] = 0x93;
    memcpy(data + 1, deep, deep_size);
    memcpy(data + 1 + deep_size, deep, deep_size);
    data[1 + 2 * deep_size] = 0x01;
    assert_int_equal(s_check(data, 2 + 2 * deep_size, 0), ZMESH_OK);
    //  [deep, deeper] is depth 65 in its second branch only.
    data[0] = 0x92;
    memcpy(data + 1 + deep_size, deeper, deeper_size);
    assert_int_equal(s_check(data, 1 + deep_size + deeper_size, 0), ZMESH_EINVAL);
    free(data);
    free(deeper);
    free(deep);
}

//  A hostile depth is refused without overflowing the stack (no recursion).
static void
test_pack_check_refuses_100000_levels(void **state)
{
    (void) state;
    s_assert_nested(BYTES("\x91"), 100000, BYTES("\x01"), 0, ZMESH_EINVAL);
    s_assert_nested(BYTES("\xdd\x00\x00\x00\x01"), 100000, BYTES("\x01"), 0, ZMESH_EINVAL);
    s_assert_nested(BYTES("\x81\x01"), 100000, BYTES("\x01"), 0, ZMESH_EINVAL);
    s_assert_nested(BYTES("\x81"), 100000, BYTES(""), 0, ZMESH_EINVAL);
    //  A max_depth above the library's stack is held to it, not trusted.
    s_assert_nested(BYTES("\x91"), 100000, BYTES("\x01"), 1000000, ZMESH_EINVAL);
    s_assert_nested(BYTES("\x91"), 65, BYTES("\x01"), 65, ZMESH_EINVAL);
}

//  ---------------------------------------------------------------------
//  zm_reader

static void
test_pack_reader_reads_array_in_every_encoding(void **state)
{
    (void) state;
    const struct {
        s_case_t input;
        uint32_t count;
    } cases[] = {
        {CASE("fixarray 0", "\x90"), 0},
        {CASE("fixarray 15", "\x9f"), 15},
        {CASE("array 16 of 0", "\xdc\x00\x00"), 0},
        {CASE("array 16 of 65535", "\xdc\xff\xff"), 65535},
        {CASE("array 32 of 1", "\xdd\x00\x00\x00\x01"), 1},
        {CASE("array 32 of 2^32-1", "\xdd\xff\xff\xff\xff"), UINT32_MAX},
    };
    for (size_t index = 0; index < COUNT(cases); index++) {
        uint8_t *data = s_dup(cases[index].input.data, cases[index].input.size);
        zm_reader_t reader;
        zm_reader_init(&reader, data, cases[index].input.size);
        uint32_t count = 12345;
        if (!zm_reader_array(&reader, &count) || count != cases[index].count)
            fail_msg("%s: read %u", cases[index].input.name, count);
        assert_true(zm_reader_done(&reader));
        free(data);
    }
}

static void
test_pack_reader_reads_uint_in_every_encoding(void **state)
{
    (void) state;
    const struct {
        s_case_t input;
        uint64_t value;
    } cases[] = {
        {CASE("fixint 0", "\x00"), 0},
        {CASE("fixint 127", "\x7f"), 127},
        {CASE("uint 8", "\xcc\xff"), 255},
        {CASE("uint 8 small", "\xcc\x01"), 1},
        {CASE("uint 16", "\xcd\x12\x34"), 0x1234},
        {CASE("uint 32", "\xce\xff\xff\xff\xff"), UINT32_MAX},
        {CASE("uint 64", "\xcf\xff\xff\xff\xff\xff\xff\xff\xff"), UINT64_MAX},
        {CASE("uint 64 small", "\xcf\x00\x00\x00\x00\x00\x00\x00\x07"), 7},
        {CASE("int 8 zero", "\xd0\x00"), 0},
        {CASE("int 8 max", "\xd0\x7f"), 127},
        {CASE("int 16 max", "\xd1\x7f\xff"), 32767},
        {CASE("int 32 max", "\xd2\x7f\xff\xff\xff"), INT32_MAX},
        {CASE("int 64 max", "\xd3\x7f\xff\xff\xff\xff\xff\xff\xff"), INT64_MAX},
    };
    for (size_t index = 0; index < COUNT(cases); index++) {
        uint8_t *data = s_dup(cases[index].input.data, cases[index].input.size);
        zm_reader_t reader;
        zm_reader_init(&reader, data, cases[index].input.size);
        uint64_t value = 12345;
        if (!zm_reader_uint(&reader, &value) || value != cases[index].value)
            fail_msg("%s: read %llu", cases[index].input.name, (unsigned long long) value);
        assert_true(zm_reader_done(&reader));
        free(data);
    }
}

//  Asserts that each case fails one read ('a'rray, 'u'int or 's'tr) and
//  leaves the reader failed.
static void
s_assert_read_fails(const s_case_t *cases, size_t count, int what)
{
    for (size_t index = 0; index < count; index++) {
        uint8_t *data = s_dup(cases[index].data, cases[index].size);
        zm_reader_t reader;
        zm_reader_init(&reader, data, cases[index].size);
        uint32_t items;
        uint64_t value;
        const char *text;
        size_t size;
        bool ok;
        if (what == 'a')
            ok = zm_reader_array(&reader, &items);
        else if (what == 'u')
            ok = zm_reader_uint(&reader, &value);
        else
            ok = zm_reader_str(&reader, &text, &size);
        if (ok || reader.ok || zm_reader_done(&reader))
            fail_msg("%s: the %c read succeeded", cases[index].name, what);
        free(data);
    }
}

static void
test_pack_reader_refuses_negative_ints_as_uint(void **state)
{
    (void) state;
    static const s_case_t cases[] = {
        CASE("fixint -1", "\xff"),
        CASE("fixint -32", "\xe0"),
        CASE("int 8 -1", "\xd0\xff"),
        CASE("int 8 -128", "\xd0\x80"),
        CASE("int 16 -1", "\xd1\xff\xff"),
        CASE("int 16 min", "\xd1\x80\x00"),
        CASE("int 32 -1", "\xd2\xff\xff\xff\xff"),
        CASE("int 32 min", "\xd2\x80\x00\x00\x00"),
        CASE("int 64 -1", "\xd3\xff\xff\xff\xff\xff\xff\xff\xff"),
        CASE("int 64 min", "\xd3\x80\x00\x00\x00\x00\x00\x00\x00"),
    };
    s_assert_read_fails(cases, COUNT(cases), 'u');
}

static void
test_pack_reader_reads_str_in_every_encoding(void **state)
{
    (void) state;
    char long_text[300];
    memset(long_text, 'q', sizeof long_text);
    const size_t sizes[] = {0, 1, 31, 32, 255, 256, 299};
    const struct {
        uint8_t type;
        int width;
    } encodings[] = {{0xa0, 0}, {0xd9, 1}, {0xda, 2}, {0xdb, 4}};
    for (size_t e = 0; e < COUNT(encodings); e++) {
        for (size_t s = 0; s < COUNT(sizes); s++) {
            size_t size = sizes[s];
            if ((encodings[e].width == 0 && size > 31) || (encodings[e].width == 1 && size > 255))
                continue;
            uint8_t *data = malloc(5 + size);
            assert_non_null(data);
            size_t head = encodings[e].width == 0
                              ? s_put_header(data, (uint8_t) (0xa0 | size), 0, 0)
                              : s_put_header(data, encodings[e].type, encodings[e].width, size);
            memcpy(data + head, long_text, size);
            zm_reader_t reader;
            zm_reader_init(&reader, data, head + size);
            const char *text = NULL;
            size_t text_size = 12345;
            if (!zm_reader_str(&reader, &text, &text_size) || text_size != size)
                fail_msg("type 0x%02x, %zu bytes: read %zu", encodings[e].type, size, text_size);
            assert_ptr_equal(text, (const char *) data + head);     //  borrowed, not copied
            assert_true(zm_reader_done(&reader));
            free(data);
        }
    }
}

static void
test_pack_reader_refuses_wrong_types(void **state)
{
    (void) state;
    // clang-format off
    static const s_case_t not_arrays[] = {
        CASE("fixmap", "\x80"), CASE("map 16", "\xde\x00\x00"), CASE("fixint", "\x01"),
        CASE("str", "\xa1" "x"), CASE("nil", "\xc0"), CASE("bin", "\xc4\x00"),
        CASE("0xc1", "\xc1"),
    };
    static const s_case_t not_uints[] = {
        CASE("str", "\xa1" "1"), CASE("nil", "\xc0"), CASE("false", "\xc2"),
        CASE("true", "\xc3"), CASE("float 32", "\xca\x3f\x80\x00\x00"),
        CASE("float 64", "\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00"),
        CASE("array", "\x91\x01"), CASE("map", "\x80"), CASE("bin", "\xc4\x01\x01"),
        CASE("fixext 1", "\xd4\x00\x01"),
    };
    static const s_case_t not_strs[] = {
        CASE("bin 8", "\xc4\x01" "x"), CASE("bin 16", "\xc5\x00\x01" "x"),
        CASE("fixint", "\x01"), CASE("nil", "\xc0"), CASE("array", "\x91\xa1" "x"),
        CASE("ext 8", "\xc7\x01\x01" "x"),
    };
    // clang-format on
    s_assert_read_fails(not_arrays, COUNT(not_arrays), 'a');
    s_assert_read_fails(not_uints, COUNT(not_uints), 'u');
    s_assert_read_fails(not_strs, COUNT(not_strs), 's');
}

static void
test_pack_reader_stays_failed_after_an_error(void **state)
{
    (void) state;
    //  nil, then values every read would accept on a fresh reader.
    uint8_t *data = s_dup(BYTES("\xc0\x01\xa1" "x" "\x91"));
    zm_reader_t reader;
    zm_reader_init(&reader, data, 5);
    uint64_t value = 99;
    assert_false(zm_reader_uint(&reader, &value));
    assert_false(reader.ok);
    assert_false(zm_reader_uint(&reader, &value));
    assert_int_equal(value, 99);        //  a failed read leaves the output alone
    const char *text;
    size_t size;
    assert_false(zm_reader_str(&reader, &text, &size));
    uint32_t count;
    assert_false(zm_reader_array(&reader, &count));
    assert_false(zm_reader_done(&reader));
    //  A field checked by the caller can also fail the reader for good.
    zm_reader_init(&reader, data + 1, 4);
    reader.ok = false;
    assert_false(zm_reader_uint(&reader, &value));
    free(data);
}

static void
test_pack_reader_is_done_only_at_the_end(void **state)
{
    (void) state;
    uint8_t *data = s_dup(BYTES("\x92\x01\xa2" "ab"));
    zm_reader_t reader;
    zm_reader_init(&reader, data, 5);
    assert_false(zm_reader_done(&reader));
    uint32_t count;
    assert_true(zm_reader_array(&reader, &count));
    assert_int_equal(count, 2);
    assert_false(zm_reader_done(&reader));
    uint64_t value;
    assert_true(zm_reader_uint(&reader, &value));
    assert_int_equal(value, 1);
    assert_false(zm_reader_done(&reader));
    const char *text;
    size_t size;
    assert_true(zm_reader_str(&reader, &text, &size));
    assert_int_equal(size, 2);
    assert_memory_equal(text, "ab", 2);
    assert_true(zm_reader_done(&reader));
    //  An empty buffer is done at once; a NULL one never reads.
    zm_reader_init(&reader, data, 0);
    assert_true(zm_reader_done(&reader));
    zm_reader_init(&reader, NULL, 0);
    assert_false(reader.ok);
    assert_false(zm_reader_done(&reader));
    assert_false(zm_reader_uint(&reader, &value));
    free(data);
}

static void
test_pack_reader_fails_past_the_end(void **state)
{
    (void) state;
    uint8_t *data = s_dup(BYTES("\x01"));
    zm_reader_t reader;
    zm_reader_init(&reader, data, 1);
    uint64_t value;
    assert_true(zm_reader_uint(&reader, &value));
    assert_true(zm_reader_done(&reader));
    assert_false(zm_reader_uint(&reader, &value));
    assert_false(zm_reader_done(&reader));
    free(data);
    static const s_case_t cut_uints[] = {
        CASE("uint 8", "\xcc"),            CASE("uint 16", "\xcd\x01"),
        CASE("uint 32", "\xce\x01\x02"),   CASE("uint 64", "\xcf\x01\x02\x03\x04\x05\x06\x07"),
        CASE("int 64", "\xd3\x00\x00\x00"), CASE("nothing", ""),
    };
    static const s_case_t cut_strs[] = {
        CASE("fixstr 3 of 2", "\xa3" "ab"), CASE("str 8 header", "\xd9"),
        CASE("str 8 of 3, 2 bytes", "\xd9\x03" "ab"), CASE("str 16 header", "\xda\x00"),
        CASE("str 32 of 2^32-1", "\xdb\xff\xff\xff\xff" "abc"), CASE("nothing", ""),
    };
    static const s_case_t cut_arrays[] = {
        CASE("array 16", "\xdc\x00"), CASE("array 32", "\xdd\x00\x00\x00"), CASE("nothing", ""),
    };
    s_assert_read_fails(cut_uints, COUNT(cut_uints), 'u');
    s_assert_read_fails(cut_strs, COUNT(cut_strs), 's');
    s_assert_read_fails(cut_arrays, COUNT(cut_arrays), 'a');
}

//  ---------------------------------------------------------------------
//  zm_writer

static void
test_pack_writer_round_trips_boundary_uints(void **state)
{
    (void) state;
    const struct {
        uint64_t value;
        size_t size;        //  the smallest encoding
        uint8_t type;       //  its first byte
    } cases[] = {
        {0, 1, 0x00},
        {127, 1, 0x7f},
        {128, 2, 0xcc},
        {255, 2, 0xcc},
        {256, 3, 0xcd},
        {65535, 3, 0xcd},
        {65536, 5, 0xce},
        {UINT32_MAX, 5, 0xce},
        {(uint64_t) UINT32_MAX + 1, 9, 0xcf},
        {UINT64_MAX, 9, 0xcf},
    };
    for (size_t index = 0; index < COUNT(cases); index++) {
        uint8_t buffer[9];
        zm_writer_t writer;
        zm_writer_init(&writer, buffer, sizeof buffer);
        zm_writer_uint(&writer, cases[index].value);
        assert_true(writer.ok);
        assert_int_equal(writer.size, cases[index].size);
        assert_int_equal(buffer[0], cases[index].type);
        assert_int_equal(zm_pack_check(buffer, writer.size, 0), ZMESH_OK);
        zm_reader_t reader;
        zm_reader_init(&reader, buffer, writer.size);
        uint64_t value = 0;
        assert_true(zm_reader_uint(&reader, &value));
        assert_true(zm_reader_done(&reader));
        if (value != cases[index].value)
            fail_msg("wrote %llu, read %llu", (unsigned long long) cases[index].value,
                     (unsigned long long) value);
    }
}

static void
test_pack_writer_round_trips_boundary_strings(void **state)
{
    (void) state;
    const struct {
        size_t size;
        size_t head;        //  header bytes of the smallest encoding
        uint8_t type;
    } cases[] = {
        {0, 1, 0xa0},   {31, 1, 0xbf},     {32, 2, 0xd9},     {255, 2, 0xd9},
        {256, 3, 0xda}, {65535, 3, 0xda}, {65536, 5, 0xdb},
    };
    for (size_t index = 0; index < COUNT(cases); index++) {
        size_t size = cases[index].size;
        char *text = malloc(size + 1);
        uint8_t *buffer = malloc(size + 5);
        assert_non_null(text);
        assert_non_null(buffer);
        for (size_t at = 0; at < size; at++)
            text[at] = (char) ('a' + at % 26);
        zm_writer_t writer;
        zm_writer_init(&writer, buffer, size + 5);
        zm_writer_str(&writer, text, size);
        assert_true(writer.ok);
        assert_int_equal(writer.size, cases[index].head + size);
        assert_int_equal(buffer[0], cases[index].type);
        assert_int_equal(zm_pack_check(buffer, writer.size, 0), ZMESH_OK);
        zm_reader_t reader;
        zm_reader_init(&reader, buffer, writer.size);
        const char *read = NULL;
        size_t read_size = 0;
        assert_true(zm_reader_str(&reader, &read, &read_size));
        assert_true(zm_reader_done(&reader));
        assert_int_equal(read_size, size);
        if (size)
            assert_memory_equal(read, text, size);
        free(buffer);
        free(text);
    }
}

static void
test_pack_writer_round_trips_array_counts(void **state)
{
    (void) state;
    const struct {
        uint32_t count;
        size_t size;
        uint8_t type;
    } cases[] = {
        {0, 1, 0x90},     {15, 1, 0x9f},    {16, 3, 0xdc},         {65535, 3, 0xdc},
        {65536, 5, 0xdd}, {UINT32_MAX, 5, 0xdd},
    };
    for (size_t index = 0; index < COUNT(cases); index++) {
        uint8_t buffer[5];
        zm_writer_t writer;
        zm_writer_init(&writer, buffer, sizeof buffer);
        zm_writer_array(&writer, cases[index].count);
        assert_true(writer.ok);
        assert_int_equal(writer.size, cases[index].size);
        assert_int_equal(buffer[0], cases[index].type);
        zm_reader_t reader;
        zm_reader_init(&reader, buffer, writer.size);
        uint32_t count = 12345;
        assert_true(zm_reader_array(&reader, &count));
        assert_int_equal(count, cases[index].count);
        assert_true(zm_reader_done(&reader));
    }
}

#define S_CANARY 16

//  Writes ["ZMP1", 2^40, <40 bytes>]: 1 + 5 + 9 + 2 + 40 = 57 bytes.
static void
s_write_sample(zm_writer_t *writer)
{
    zm_writer_array(writer, 3);
    zm_writer_str(writer, "ZMP1", 4);
    zm_writer_uint(writer, (uint64_t) 1 << 40);
    zm_writer_str(writer, "0123456789012345678901234567890123456789", 40);
}

static void
test_pack_writer_overflow_stays_in_bounds(void **state)
{
    (void) state;
    const size_t needed = 57;
    for (size_t max_size = 0; max_size <= needed; max_size++) {
        uint8_t *buffer = malloc(max_size + S_CANARY);
        assert_non_null(buffer);
        memset(buffer, 0xa5, max_size + S_CANARY);
        zm_writer_t writer;
        zm_writer_init(&writer, buffer, max_size);
        s_write_sample(&writer);
        if (writer.ok != (max_size == needed) || writer.size > max_size)
            fail_msg("capacity %zu: ok %d, size %zu", max_size, writer.ok, writer.size);
        for (size_t at = max_size; at < max_size + S_CANARY; at++)
            if (buffer[at] != 0xa5)
                fail_msg("capacity %zu: byte %zu overwritten", max_size, at);
        if (writer.ok)
            assert_int_equal(zm_pack_check(buffer, writer.size, 0), ZMESH_OK);
        free(buffer);
    }
}

static void
test_pack_writer_writes_nothing_after_an_overflow(void **state)
{
    (void) state;
    uint8_t buffer[4 + S_CANARY];
    memset(buffer, 0xa5, sizeof buffer);
    zm_writer_t writer;
    zm_writer_init(&writer, buffer, 4);
    zm_writer_uint(&writer, UINT64_MAX);        //  9 bytes: does not fit
    assert_false(writer.ok);
    assert_int_equal(writer.size, 0);
    zm_writer_uint(&writer, 1);                 //  would fit, but the writer has failed
    zm_writer_array(&writer, 1);
    zm_writer_str(&writer, "a", 1);
    assert_false(writer.ok);
    assert_int_equal(writer.size, 0);
    for (size_t at = 0; at < sizeof buffer; at++)
        assert_int_equal(buffer[at], 0xa5);
    //  A str whose header fits but whose bytes do not.
    zm_writer_init(&writer, buffer, 4);
    zm_writer_str(&writer, "abcd", 4);
    assert_false(writer.ok);
    assert_true(writer.size <= 4);
    for (size_t at = 4; at < sizeof buffer; at++)
        assert_int_equal(buffer[at], 0xa5);
}

//  ---------------------------------------------------------------------
//  zmesh_pack, zmesh_msg, zmesh_msgpack_check

static void
test_pack_builder_packs_expected_bytes(void **state)
{
    (void) state;
    zmesh_pack_t *pack = zmesh_pack_new();
    assert_non_null(pack);
    assert_int_equal(zmesh_pack_size(pack), 0);
    zmesh_pack_map(pack, 4);
    zmesh_pack_str(pack, "id");
    zmesh_pack_uint(pack, 300);
    zmesh_pack_str(pack, "ok");
    zmesh_pack_bool(pack, true);
    zmesh_pack_str(pack, "neg");
    zmesh_pack_int(pack, -200);
    zmesh_pack_str(pack, "list");
    zmesh_pack_array(pack, 5);
    zmesh_pack_nil(pack);
    zmesh_pack_double(pack, 1.5);
    zmesh_pack_bin(pack, "\x00\xff", 2);
    zmesh_pack_strn(pack, "a\0b", 3);
    zmesh_pack_int(pack, 5);
    // clang-format off
    static const char expected[] =
        "\x84"
        "\xa2" "id" "\xcd\x01\x2c"
        "\xa2" "ok" "\xc3"
        "\xa3" "neg" "\xd1\xff\x38"
        "\xa4" "list" "\x95" "\xc0" "\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00"
            "\xc4\x02\x00\xff" "\xa3" "a\0b" "\x05";
    // clang-format on
    assert_int_equal(zmesh_pack_size(pack), sizeof expected - 1);
    assert_memory_equal(zmesh_pack_data(pack), expected, sizeof expected - 1);
    assert_int_equal(s_check(zmesh_pack_data(pack), zmesh_pack_size(pack), 0), ZMESH_OK);
    //  reset starts the next payload from nothing.
    zmesh_pack_reset(pack);
    assert_int_equal(zmesh_pack_size(pack), 0);
    zmesh_pack_bool(pack, false);
    assert_int_equal(zmesh_pack_size(pack), 1);
    assert_memory_equal(zmesh_pack_data(pack), "\xc2", 1);
    zmesh_pack_destroy(&pack);
    assert_null(pack);
    zmesh_pack_destroy(&pack);                  //  a no-op on NULL
}

//  The builder's bytes for long values pass the validator and read back.
static void
test_pack_builder_output_passes_the_validator(void **state)
{
    (void) state;
    zmesh_pack_t *pack = zmesh_pack_new();
    char text[70000];
    memset(text, 'x', sizeof text);
    zmesh_pack_array(pack, 20);
    const size_t sizes[] = {0, 31, 32, 255, 256, 65535, 65536, 70000};
    for (size_t index = 0; index < COUNT(sizes); index++) {
        zmesh_pack_strn(pack, text, sizes[index]);
        zmesh_pack_bin(pack, text, sizes[index] % 1000);
    }
    zmesh_pack_int(pack, INT64_MIN);
    zmesh_pack_uint(pack, UINT64_MAX);
    zmesh_pack_map(pack, 0);
    zmesh_pack_array(pack, 0);
    assert_int_equal(s_check(zmesh_pack_data(pack), zmesh_pack_size(pack), 0), ZMESH_OK);
    assert_int_equal(s_check(zmesh_pack_data(pack), zmesh_pack_size(pack) - 1, 0), ZMESH_EINVAL);
    zm_reader_t reader;
    zm_reader_init(&reader, zmesh_pack_data(pack), zmesh_pack_size(pack));
    uint32_t count;
    assert_true(zm_reader_array(&reader, &count));
    assert_int_equal(count, 20);
    const char *read;
    size_t size;
    assert_true(zm_reader_str(&reader, &read, &size));
    assert_int_equal(size, 0);
    zmesh_pack_destroy(&pack);
}

static void
test_pack_msg_round_trips_bytes(void **state)
{
    (void) state;
    char source[] = "\x92\x01\x02";
    zmesh_msg_t *msg = zmesh_msg_new(source, 3);
    assert_non_null(msg);
    source[0] = 0;                              //  the message holds its own copy
    assert_int_equal(zmesh_msg_size(msg), 3);
    assert_ptr_not_equal(zmesh_msg_data(msg), source);
    assert_memory_equal(zmesh_msg_data(msg), "\x92\x01\x02", 3);
    zmesh_msg_destroy(&msg);
    assert_null(msg);
    zmesh_msg_destroy(&msg);                    //  a no-op on NULL

    msg = zmesh_msg_new(NULL, 0);
    assert_non_null(msg);
    assert_int_equal(zmesh_msg_size(msg), 0);
    zmesh_msg_destroy(&msg);

    size_t big_size = (size_t) 1 << 20;
    uint8_t *big = malloc(big_size);
    assert_non_null(big);
    for (size_t at = 0; at < big_size; at++)
        big[at] = (uint8_t) at;
    msg = zmesh_msg_new(big, big_size);
    assert_int_equal(zmesh_msg_size(msg), big_size);
    assert_memory_equal(zmesh_msg_data(msg), big, big_size);
    zmesh_msg_destroy(&msg);
    free(big);
}

static void
test_pack_msgpack_check_mirrors_zm_pack_check(void **state)
{
    (void) state;
    static const s_case_t inputs[] = {
        CASE("nil", "\xc0"),
        CASE("empty", ""),
        CASE("0xc1", "\xc1"),
        CASE("trailing", "\x91\x01" "junk"),
        CASE("huge", "\xdd\xff\xff\xff\xff"),
        CASE("[[1]]", "\x91\x91\x01"),
        CASE("[[]]", "\x91\x90"),
        CASE("{1: [2]}", "\x81\x01\x91\x02"),
    };
    const int depths[] = {-5, 0, 1, 2, 3, 64, 65, 1000};
    for (size_t i = 0; i < COUNT(inputs); i++)
        for (size_t d = 0; d < COUNT(depths); d++) {
            int expected = zm_pack_check(inputs[i].data, inputs[i].size, depths[d]);
            int rc = zmesh_msgpack_check(inputs[i].data, inputs[i].size, depths[d]);
            if (rc != expected)
                fail_msg("%s at max_depth %d: %d, zm_pack_check %d", inputs[i].name, depths[d],
                         rc, expected);
        }
    //  And the verdicts themselves, so the two cannot agree on being wrong.
    assert_int_equal(zmesh_msgpack_check(BYTES("\x91\x91\x01"), 1), ZMESH_EINVAL);
    assert_int_equal(zmesh_msgpack_check(BYTES("\x91\x91\x01"), 2), ZMESH_OK);
    assert_int_equal(zmesh_msgpack_check(BYTES("\xc0"), 0), ZMESH_OK);
    assert_int_equal(zmesh_msgpack_check(BYTES("\x91\x01" "junk"), 0), ZMESH_EINVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pack_check_accepts_every_type_and_width),
        cmocka_unit_test(test_pack_check_accepts_long_encodings),
        cmocka_unit_test(test_pack_check_rejects_empty_and_null),
        cmocka_unit_test(test_pack_check_rejects_never_used_byte),
        cmocka_unit_test(test_pack_check_rejects_trailing_bytes_and_two_objects),
        cmocka_unit_test(test_pack_check_rejects_every_truncation),
        cmocka_unit_test(test_pack_check_rejects_huge_claimed_counts),
        cmocka_unit_test(test_pack_check_bounds_depth_of_arrays),
        cmocka_unit_test(test_pack_check_bounds_depth_of_maps),
        cmocka_unit_test(test_pack_check_measures_depth_per_branch),
        cmocka_unit_test(test_pack_check_refuses_100000_levels),
        cmocka_unit_test(test_pack_reader_reads_array_in_every_encoding),
        cmocka_unit_test(test_pack_reader_reads_uint_in_every_encoding),
        cmocka_unit_test(test_pack_reader_refuses_negative_ints_as_uint),
        cmocka_unit_test(test_pack_reader_reads_str_in_every_encoding),
        cmocka_unit_test(test_pack_reader_refuses_wrong_types),
        cmocka_unit_test(test_pack_reader_stays_failed_after_an_error),
        cmocka_unit_test(test_pack_reader_is_done_only_at_the_end),
        cmocka_unit_test(test_pack_reader_fails_past_the_end),
        cmocka_unit_test(test_pack_writer_round_trips_boundary_uints),
        cmocka_unit_test(test_pack_writer_round_trips_boundary_strings),
        cmocka_unit_test(test_pack_writer_round_trips_array_counts),
        cmocka_unit_test(test_pack_writer_overflow_stays_in_bounds),
        cmocka_unit_test(test_pack_writer_writes_nothing_after_an_overflow),
        cmocka_unit_test(test_pack_builder_packs_expected_bytes),
        cmocka_unit_test(test_pack_builder_output_passes_the_validator),
        cmocka_unit_test(test_pack_msg_round_trips_bytes),
        cmocka_unit_test(test_pack_msgpack_check_mirrors_zm_pack_check),
    };
    return cmocka_run_group_tests_name("pack", tests, NULL, NULL);
}
