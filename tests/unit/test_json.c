//  test_json.c - unit tests of zm_json: JSON <-> MessagePack round trips, every
//  MessagePack encoding width, and hostile MessagePack bytes (truncation,
//  trailing bytes, huge counts, deep nesting, bad UTF-8, NaN) that must be
//  refused with a reason, without crashing, asserting or allocating per claim.

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "zm_json.h"

//  A byte string literal and its length; literals may hold NUL bytes.
#define BYTES(literal) literal, sizeof(literal) - 1

//  Stands in for an output pointer to prove a failed call left it alone.
static char s_untouched[] = "untouched";

//  Asserts that the MessagePack bytes convert to exactly expected.
static void
s_assert_json(const char *data, size_t size, const char *expected)
{
    char *text = s_untouched;
    char error[ZM_JSON_ERROR_MAX] = "stale";
    int rc = zm_msgpack_to_json(data, size, &text, error, sizeof error);
    if (rc != ZMESH_OK)
        print_error("expected %s, got error: %s\n", expected, error);
    assert_int_equal(rc, ZMESH_OK);
    assert_string_equal(text, expected);
    assert_string_equal(error, "");
    free(text);
}

//  Asserts that the MessagePack bytes are refused with a reason containing
//  reason, and that *text_p was not written.
static void
s_assert_rejected(const char *data, size_t size, const char *reason)
{
    char *text = s_untouched;
    char error[ZM_JSON_ERROR_MAX] = "";
    int rc = zm_msgpack_to_json(data, size, &text, error, sizeof error);
    if (rc == ZMESH_OK)
        print_error("expected rejection (%s), got %s\n", reason, text);
    assert_int_equal(rc, ZMESH_EINVAL);
    assert_ptr_equal(text, s_untouched);
    assert_true(strncmp(error, "bad MessagePack at byte ", 24) == 0);
    assert_non_null(strstr(error, reason));
}

//  Asserts that a cut encoding is refused: as truncated, or for a count that
//  the bytes left cannot hold, whichever the reader notices first.
static void
s_assert_truncated(const char *data, size_t size)
{
    char *text = s_untouched;
    char error[ZM_JSON_ERROR_MAX] = "";
    assert_int_equal(zm_msgpack_to_json(data, size, &text, error, sizeof error), ZMESH_EINVAL);
    assert_ptr_equal(text, s_untouched);
    if (!strstr(error, ": truncated") && !strstr(error, "count exceeds the bytes left"))
        fail_msg("cut at %zu: unexpected reason: %s", size, error);
}

//  Asserts that JSON text packs to exactly the expected bytes.
static void
s_assert_packs(const char *json, const char *expected, size_t expected_size)
{
    char *data = NULL;
    size_t size = 0;
    char error[ZM_JSON_ERROR_MAX] = "stale";
    int rc = zm_json_to_msgpack(json, strlen(json), &data, &size, error, sizeof error);
    if (rc != ZMESH_OK)
        print_error("%s: %s\n", json, error);
    assert_int_equal(rc, ZMESH_OK);
    assert_string_equal(error, "");
    assert_int_equal(size, expected_size);
    assert_memory_equal(data, expected, expected_size);
    free(data);
}

//  Asserts that JSON text is refused with a reason containing reason.
static void
s_assert_bad_json(const char *json, size_t length, const char *reason)
{
    char *data = s_untouched;
    size_t size = 12345;
    char error[ZM_JSON_ERROR_MAX] = "";
    int rc = zm_json_to_msgpack(json, length, &data, &size, error, sizeof error);
    assert_int_equal(rc, ZMESH_EINVAL);
    assert_ptr_equal(data, s_untouched);
    assert_int_equal(size, 12345);
    assert_true(strncmp(error, "bad JSON", 8) == 0);
    assert_true(strlen(error) > strlen("bad JSON: "));
    assert_null(strchr(error, '\n'));
    assert_non_null(strstr(error, reason));
}

//  Asserts JSON -> MessagePack -> JSON gives back the same text, byte for byte.
static void
s_assert_round_trip(const char *json)
{
    char *data = NULL;
    size_t size = 0;
    int rc = zm_json_to_msgpack(json, strlen(json), &data, &size, NULL, 0);
    if (rc != ZMESH_OK)
        print_error("cannot pack %s\n", json);
    assert_int_equal(rc, ZMESH_OK);
    s_assert_json(data, size, json);
    free(data);
}

//  Returns count copies of unit followed by tail, in a malloc'ed buffer.
static char *
s_repeat(const char *unit, size_t unit_size, size_t count, const char *tail, size_t tail_size,
         size_t *size_p)
{
    size_t size = unit_size * count + tail_size;
    char *buffer = malloc(size + 1);
    assert_non_null(buffer);
    for (size_t index = 0; index < count; index++)
        memcpy(buffer + index * unit_size, unit, unit_size);
    memcpy(buffer + unit_size * count, tail, tail_size);
    buffer[size] = '\0';
    *size_p = size;
    return buffer;
}

//  Returns open count times, then middle, then close count times, as a
//  malloc'ed string: s_nest("[", 2, "", "]") is "[[]]".
static char *
s_nest(const char *open, size_t count, const char *middle, const char *close)
{
    size_t open_size = strlen(open), close_size = strlen(close);
    size_t size = (open_size + close_size) * count + strlen(middle);
    char *text = malloc(size + 1);
    assert_non_null(text);
    char *out = text;
    for (size_t index = 0; index < count; index++, out += open_size)
        memcpy(out, open, open_size);
    out = stpcpy(out, middle);
    for (size_t index = 0; index < count; index++, out += close_size)
        memcpy(out, close, close_size);
    *out = '\0';
    return text;
}

static void
test_json_round_trips_scalars(void **state)
{
    (void)state;
    // clang-format off
    const char *texts[] = {
        "null", "true", "false", "0", "1", "127", "128", "255", "256", "65535", "65536",
        "4294967296", "9223372036854775807", "-1", "-32", "-33", "-128", "-129", "-32768",
        "-2147483649", "-9223372036854775808", "0.5", "1.0", "-2.25", "1e20", "1.52587890625e-5",
        "-0.0", "\"\"", "\"plain\"", "\"h\xc3\xa9llo \xf0\x9f\x98\x80\"",
        "\"q\\\"b\\\\n\\n\\u0001\"", "\"a\\u0000b\"",
    };
    // clang-format on
    for (size_t index = 0; index < sizeof texts / sizeof texts[0]; index++)
        s_assert_round_trip(texts[index]);
}

static void
test_json_round_trips_nested_structures(void **state)
{
    (void)state;
    s_assert_round_trip("{\"x\":[1,2,3]}");
    s_assert_round_trip("[]");
    s_assert_round_trip("{}");
    s_assert_round_trip("[[],{},[[]],{\"a\":{}}]");
    s_assert_round_trip("{\"z\":1,\"a\":2,\"m\":{\"y\":[true,false,null],\"b\":\"s\"},"
                        "\"list\":[{\"k\":-1.5},\"\",[0]]}");
}

static void
test_json_keeps_key_order(void **state)
{
    (void)state;
    //  map of 3: "z":1, "k":2, "m":3, in the text's order.
    s_assert_packs("{\"z\":1,\"k\":2,\"m\":3}", BYTES("\x83\xa1z\x01\xa1k\x02\xa1m\x03"));
    s_assert_json(BYTES("\x83\xa1z\x01\xa1k\x02\xa1m\x03"), "{\"z\":1,\"k\":2,\"m\":3}");
}

static void
test_json_packs_smallest_encodings(void **state)
{
    (void)state;
    s_assert_packs("null", BYTES("\xc0"));
    s_assert_packs("false", BYTES("\xc2"));
    s_assert_packs("true", BYTES("\xc3"));
    s_assert_packs("1", BYTES("\x01"));
    s_assert_packs("-1", BYTES("\xff"));
    s_assert_packs("200", BYTES("\xcc\xc8"));
    s_assert_packs("-200", BYTES("\xd1\xff\x38"));
    s_assert_packs("70000", BYTES("\xce\x00\x01\x11\x70"));
    s_assert_packs("-2147483649", BYTES("\xd3\xff\xff\xff\xff\x7f\xff\xff\xff"));
    s_assert_packs("1.5", BYTES("\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00"));
    s_assert_packs("\"xy\"", BYTES("\xa2xy"));
    s_assert_packs("\"x\\u0000y\"", BYTES("\xa3x\0y"));
    s_assert_packs("{\"k\":[]}", BYTES("\x81\xa1k\x90"));
}

static void
test_json_accepts_surrounding_whitespace(void **state)
{
    (void)state;
    s_assert_packs("  \n\t{\"k\" : 1}\r\n ", BYTES("\x81\xa1k\x01"));
}

static void
test_json_decodes_every_integer_width(void **state)
{
    (void)state;
    s_assert_json(BYTES("\x00"), "0");
    s_assert_json(BYTES("\x7f"), "127");
    s_assert_json(BYTES("\xe0"), "-32");
    s_assert_json(BYTES("\xff"), "-1");
    s_assert_json(BYTES("\xcc\xff"), "255");
    s_assert_json(BYTES("\xcd\x01\x00"), "256");
    s_assert_json(BYTES("\xce\x00\x01\x00\x00"), "65536");
    s_assert_json(BYTES("\xcf\x00\x00\x00\x01\x00\x00\x00\x00"), "4294967296");
    s_assert_json(BYTES("\xcf\x7f\xff\xff\xff\xff\xff\xff\xff"), "9223372036854775807");
    //  Beyond int64: a real, the nearest double to 2^64 - 1.
    s_assert_json(BYTES("\xcf\xff\xff\xff\xff\xff\xff\xff\xff"), "1.8446744073709552e19");
    s_assert_json(BYTES("\xd0\x80"), "-128");
    s_assert_json(BYTES("\xd0\x7f"), "127");
    s_assert_json(BYTES("\xd1\x80\x00"), "-32768");
    s_assert_json(BYTES("\xd2\x80\x00\x00\x00"), "-2147483648");
    s_assert_json(BYTES("\xd3\x80\x00\x00\x00\x00\x00\x00\x00"), "-9223372036854775808");
    s_assert_json(BYTES("\xd3\xff\xff\xff\xff\xff\xff\xff\xfe"), "-2");
}

static void
test_json_decodes_every_other_width(void **state)
{
    (void)state;
    s_assert_json(BYTES("\xc0"), "null");
    s_assert_json(BYTES("\xc2"), "false");
    s_assert_json(BYTES("\xc3"), "true");
    s_assert_json(BYTES("\xca\x3f\xc0\x00\x00"), "1.5");
    s_assert_json(BYTES("\xca\x3d\xcc\xcc\xcd"), "0.10000000149011612"); //  0.1f
    s_assert_json(BYTES("\xcb\xbf\xf8\x00\x00\x00\x00\x00\x00"), "-1.5");
    //  Reals keep 17 digits so the double survives exactly (see zm_json.h).
    s_assert_json(BYTES("\xcb\x3f\xb9\x99\x99\x99\x99\x99\x9a"), "0.10000000000000001");
    s_assert_json(BYTES("\xa3xyz"), "\"xyz\"");
    s_assert_json(BYTES("\xd9\x03xyz"), "\"xyz\"");
    s_assert_json(BYTES("\xda\x00\x03xyz"), "\"xyz\"");
    s_assert_json(BYTES("\xdb\x00\x00\x00\x03xyz"), "\"xyz\"");
    s_assert_json(BYTES("\xd9\x00"), "\"\"");
    s_assert_json(BYTES("\x92\x01\x02"), "[1,2]");
    s_assert_json(BYTES("\xdc\x00\x02\x01\x02"), "[1,2]");
    s_assert_json(BYTES("\xdd\x00\x00\x00\x02\x01\x02"), "[1,2]");
    s_assert_json(BYTES("\xdc\x00\x00"), "[]");
    s_assert_json(BYTES("\x81\xa1k\x01"), "{\"k\":1}");
    s_assert_json(BYTES("\xde\x00\x01\xa1k\x01"), "{\"k\":1}");
    s_assert_json(BYTES("\xdf\x00\x00\x00\x01\xa1k\x01"), "{\"k\":1}");
    s_assert_json(BYTES("\xdf\x00\x00\x00\x00"), "{}");
}

static void
test_json_maps_bin_and_ext(void **state)
{
    (void)state;
    s_assert_json(BYTES("\xc4\x00"), "{\"$bin\":\"\"}");
    s_assert_json(BYTES("\xc4\x03\x01\x02\x03"), "{\"$bin\":\"AQID\"}");
    s_assert_json(BYTES("\xc5\x00\x01\xff"), "{\"$bin\":\"/w==\"}");
    s_assert_json(BYTES("\xc6\x00\x00\x00\x02\xfb\xff"), "{\"$bin\":\"+/8=\"}");
    s_assert_json(BYTES("\xd4\x05z"), "{\"$ext\":5,\"$bin\":\"eg==\"}");
    s_assert_json(BYTES("\xd5\xffxy"), "{\"$ext\":-1,\"$bin\":\"eHk=\"}");
    s_assert_json(BYTES("\xd6\x7fwxyz"), "{\"$ext\":127,\"$bin\":\"d3h5eg==\"}");
    s_assert_json(BYTES("\xd7\x80ghijklmn"), "{\"$ext\":-128,\"$bin\":\"Z2hpamtsbW4=\"}");
    s_assert_json(BYTES("\xd8\x01ghijklmnopqrstuv"),
                  "{\"$ext\":1,\"$bin\":\"Z2hpamtsbW5vcHFyc3R1dg==\"}");
    s_assert_json(BYTES("\xc7\x03\x02xyz"), "{\"$ext\":2,\"$bin\":\"eHl6\"}");
    s_assert_json(BYTES("\xc8\x00\x02\x03xy"), "{\"$ext\":3,\"$bin\":\"eHk=\"}");
    s_assert_json(BYTES("\xc9\x00\x00\x00\x00\x04"), "{\"$ext\":4,\"$bin\":\"\"}");
    //  Inside containers too, and the mapping is one-way: it comes back as a map.
    s_assert_json(BYTES("\x92\xc4\x01\x00\xd4\x00\x00"),
                  "[{\"$bin\":\"AA==\"},{\"$ext\":0,\"$bin\":\"AA==\"}]");
    s_assert_packs("{\"$bin\":\"AA==\"}", BYTES("\x81\xa4$bin\xa4\x41\x41=="));
}

static void
test_json_stringifies_non_str_map_keys(void **state)
{
    (void)state;
    //  {1:"a", nil:true, [1,2]:3, -1.5:false, bin(00):0}
    s_assert_json(BYTES("\x85\x01\xa1z\xc0\xc3\x92\x01\x02\x03"
                        "\xcb\xbf\xf8\x00\x00\x00\x00\x00\x00\xc2\xc4\x01\x00\x00"),
                  "{\"1\":\"z\",\"null\":true,\"[1,2]\":3,\"-1.5\":false,"
                  "\"{\\\"$bin\\\":\\\"AA==\\\"}\":0}");
    //  A map key that is itself a map with a str key.
    s_assert_json(BYTES("\x81\x81\xa1k\xc0\xc0"), "{\"{\\\"k\\\":null}\":null}");
}

static void
test_json_rejects_duplicate_map_keys(void **state)
{
    (void)state;
    s_assert_rejected(BYTES("\x82\xa1k\x01\xa1k\x02"), "at byte 4: duplicate map key");
    //  1 and "1" are distinct in MessagePack but the same JSON key.
    s_assert_rejected(BYTES("\x82\x01\x01\xa1\x31\x02"), "at byte 3: duplicate map key");
    s_assert_bad_json("{\"a\":1,\"a\":2}", 13, "duplicate object key");
}

static void
test_json_rejects_keys_nested_in_keys_that_keep_growing(void **state)
{
    (void)state;
    //  Each level is a map whose key is the level below: every level escapes
    //  the quotes again, so the key text would double per level (2^40 bytes).
    char data[300];
    size_t size = 0;
    data[size++] = (char)0xaf; //  fixstr of 15 quotes
    memset(data + size, '"', 15);
    size += 15;
    for (int level = 0; level < 40; level++) {
        memmove(data + 1, data, size);
        data[0] = (char)0x81;
        data[size + 1] = (char)0xc0; //  its value: nil
        size += 2;
    }
    s_assert_rejected(data, size, "map key too long as JSON text");
}

static void
test_json_rejects_truncation_at_every_offset(void **state)
{
    (void)state;
    const char *json = "{\"name\":\"zmesh\",\"list\":[1,-200,70000,1.5,true,null,\"x\"],"
                       "\"map\":{\"k\":[{},[]],\"n\":-9223372036854775808},\"s\":\"\"}";
    char *data = NULL;
    size_t size = 0;
    assert_int_equal(zm_json_to_msgpack(json, strlen(json), &data, &size, NULL, 0), ZMESH_OK);
    s_assert_json(data, size, json);
    for (size_t cut = 0; cut < size; cut++)
        s_assert_truncated(data, cut);
    free(data);

    //  The types JSON does not produce: str8, bin8, ext8, fixext, float32, uint64.
    const char other[] = "\x86\xd9\x01s\xc4\x02\x01\x02\xa1t\xc7\x01\x05\x09"
                         "\xa1v\xd5\x01\x02\x03\xa1w\xca\x3f\xc0\x00\x00"
                         "\xa1x\xcf\x00\x00\x00\x00\x00\x00\x00\x07"
                         "\xa1y\xde\x00\x01\x01\xdc\x00\x01\xc0";
    size_t other_size = sizeof other - 1;
    s_assert_json(other, other_size,
                  "{\"s\":{\"$bin\":\"AQI=\"},\"t\":{\"$ext\":5,\"$bin\":\"CQ==\"},"
                  "\"v\":{\"$ext\":1,\"$bin\":\"AgM=\"},\"w\":1.5,\"x\":7,\"y\":{\"1\":[null]}}");
    for (size_t cut = 0; cut < other_size; cut++)
        s_assert_truncated(other, cut);
}

static void
test_json_rejects_trailing_bytes(void **state)
{
    (void)state;
    s_assert_rejected(BYTES("\x91\x01junk"), "at byte 2: trailing bytes");
    s_assert_rejected(BYTES("\xc0\xc0"), "at byte 1: trailing bytes");
    s_assert_rejected(BYTES("\x80\x00"), "at byte 1: trailing bytes");
}

static void
test_json_rejects_reserved_c1(void **state)
{
    (void)state;
    s_assert_rejected(BYTES("\xc1"), "at byte 0: 0xc1");
    s_assert_rejected(BYTES("\x92\x01\xc1"), "at byte 2: 0xc1");
    s_assert_rejected(BYTES("\x81\xc1\x01"), "at byte 1: 0xc1");
}

static void
test_json_rejects_counts_beyond_the_bytes(void **state)
{
    (void)state;
    s_assert_rejected(BYTES("\xdd\xff\xff\xff\xff"), "array count exceeds the bytes left");
    s_assert_rejected(BYTES("\xdf\xff\xff\xff\xff"), "map count exceeds the bytes left");
    s_assert_rejected(BYTES("\xdb\xff\xff\xff\xff"), "truncated");
    s_assert_rejected(BYTES("\xc6\xff\xff\xff\xff"), "truncated");
    s_assert_rejected(BYTES("\xc9\xff\xff\xff\xff\x01"), "truncated");
    s_assert_rejected(BYTES("\xdc\xff\xff\x01\x02"), "array count exceeds the bytes left");
    //  A map of 2 needs at least 4 bytes; 3 are left.
    s_assert_rejected(BYTES("\x82\x01\x02\x03"), "map count exceeds the bytes left");
    s_assert_rejected(BYTES("\x93\x01\x02"), "array count exceeds the bytes left");
}

static void
test_json_limits_msgpack_nesting_to_64(void **state)
{
    (void)state;
    size_t size;
    char *data = s_repeat("\x91", 1, 63, "\x90", 1, &size); //  64 arrays
    char *expected = s_nest("[", 64, "", "]");
    s_assert_json(data, size, expected);
    free(expected);
    free(data);
    data = s_repeat("\x91", 1, 64, "\x90", 1, &size); //  65 arrays
    s_assert_rejected(data, size, "at byte 64: nesting deeper than 64");
    free(data);
    data = s_repeat("\x81\x00", 2, 63, "\x80", 1, &size); //  64 maps {0:{0:...{}}}
    expected = s_nest("{\"0\":", 63, "{}", "}");
    s_assert_json(data, size, expected);
    free(expected);
    free(data);
    data = s_repeat("\x81\x00", 2, 64, "\x80", 1, &size); //  65 maps
    s_assert_rejected(data, size, "at byte 128: nesting deeper than 64");
    free(data);
    //  Containers in a map key count too: the key array is the 65th level.
    data = s_repeat("\x91", 1, 63, "\x81\x91\x00\x00", 4, &size);
    s_assert_rejected(data, size, "at byte 64: nesting deeper than 64");
    free(data);
}

static void
test_json_rejects_100000_levels_without_overflow(void **state)
{
    (void)state;
    size_t size;
    char *data = s_repeat("\x91", 1, 100000, "\x90", 1, &size);
    s_assert_rejected(data, size, "nesting deeper than 64");
    free(data);
    data = s_repeat("\x81\xc0", 2, 100000, "\xc0", 1, &size);
    s_assert_rejected(data, size, "nesting deeper than 64");
    free(data);
    //  Nested as keys rather than values: {{{...}:nil}:nil}
    data = s_repeat("\x81", 1, 100000, "\xc0", 1, &size);
    s_assert_rejected(data, size, "nesting deeper than 64");
    free(data);
}

static void
test_json_limits_json_nesting_to_64(void **state)
{
    (void)state;
    size_t size;
    char *json = s_nest("[", 64, "", "]");
    char *expected = s_repeat("\x91", 1, 63, "\x90", 1, &size);
    s_assert_packs(json, expected, size);
    free(expected);
    free(json);
    json = s_nest("{\"k\":", 64, "[]", "}"); //  65 levels
    s_assert_bad_json(json, strlen(json), "bad JSON: nesting deeper than 64");
    free(json);
    json = s_nest("[", 100000, "", "]"); //  jansson stops at 2048
    s_assert_bad_json(json, strlen(json), "bad JSON at line 1 column");
    free(json);
}

static void
test_json_rejects_invalid_utf8(void **state)
{
    (void)state;
    s_assert_rejected(BYTES("\xa2\xc3\x28"), "at byte 0: str is not valid UTF-8");
    s_assert_rejected(BYTES("\xa2\xc0\x80"), "not valid UTF-8");         //  overlong NUL
    s_assert_rejected(BYTES("\xa3\xe0\x80\xaf"), "not valid UTF-8");     //  overlong '/'
    s_assert_rejected(BYTES("\xa3\xed\xa0\x80"), "not valid UTF-8");     //  surrogate
    s_assert_rejected(BYTES("\xa4\xf4\x90\x80\x80"), "not valid UTF-8"); //  past U+10FFFF
    s_assert_rejected(BYTES("\xa2z\xe2"), "not valid UTF-8");            //  cut sequence
    s_assert_rejected(BYTES("\xa1\xff"), "not valid UTF-8");
    s_assert_rejected(BYTES("\xa1\x80"), "not valid UTF-8"); //  lone continuation
    s_assert_rejected(BYTES("\x81\xa1\xfe\x01"), "at byte 1: str is not valid UTF-8");
    //  The edges that are valid.
    s_assert_json(BYTES("\xa2\xc2\x80"), "\"\xc2\x80\"");
    s_assert_json(BYTES("\xa3\xef\xbf\xbf"), "\"\xef\xbf\xbf\"");
    s_assert_json(BYTES("\xa4\xf4\x8f\xbf\xbf"), "\"\xf4\x8f\xbf\xbf\"");
}

static void
test_json_rejects_nan_and_infinity(void **state)
{
    (void)state;
    s_assert_rejected(BYTES("\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00"), "NaN or infinity");
    s_assert_rejected(BYTES("\xcb\xff\xf0\x00\x00\x00\x00\x00\x00"), "NaN or infinity");
    s_assert_rejected(BYTES("\xca\x7f\xc0\x00\x00"), "NaN or infinity");
    s_assert_rejected(BYTES("\x91\xca\x7f\x80\x00\x00"), "at byte 1: NaN or infinity");
    s_assert_bad_json("NaN", 3, "bad JSON at line 1");
}

static void
test_json_rejects_bad_json_text(void **state)
{
    (void)state;
    s_assert_bad_json("{\"a\":}", 6, "bad JSON at line 1 column 6: unexpected token");
    s_assert_bad_json("[1,", 3, "bad JSON at line 1 column 3: ");
    s_assert_bad_json("[1,\n2,\n]", 8, "bad JSON at line 3 column 1: ");
    s_assert_bad_json("18446744073709551616", 20, "too big integer");
    s_assert_bad_json("{\"a\\u0000\":1}", 13, "NUL byte in object key");
    s_assert_bad_json("\"\xff\"", 3, "bad JSON at line 1");
    //  Control characters in the quoted input never break the line.
    s_assert_bad_json("[\x01\n\x02]", 5, "bad JSON at line");
}

static void
test_json_rejects_empty_input(void **state)
{
    (void)state;
    s_assert_bad_json("", 0, "bad JSON at line 1 column 0: ");
    s_assert_bad_json(" \n\t ", 4, "bad JSON at line 2");
    s_assert_rejected("", 0, "at byte 0: truncated");
    s_assert_rejected(NULL, 0, "at byte 0: truncated");
}

static void
test_json_rejects_two_values(void **state)
{
    (void)state;
    s_assert_bad_json("1 2", 3, "bad JSON at line 1 column 3: end of file expected");
    s_assert_bad_json("{} []", 5, "end of file expected");
    //  length bounds the text: here the second value is outside it.
    char *data = NULL;
    size_t size = 0;
    assert_int_equal(zm_json_to_msgpack("{} []", 2, &data, &size, NULL, 0), ZMESH_OK);
    assert_int_equal(size, 1);
    assert_int_equal((unsigned char)data[0], 0x80);
    free(data);
}

static void
test_json_error_argument_is_optional(void **state)
{
    (void)state;
    char *text = s_untouched;
    char *data = s_untouched;
    size_t size = 0;
    assert_int_equal(zm_msgpack_to_json(BYTES("\xc1"), &text, NULL, 0), ZMESH_EINVAL);
    assert_int_equal(zm_json_to_msgpack("[", 1, &data, &size, NULL, 0), ZMESH_EINVAL);
    assert_ptr_equal(text, s_untouched);
    assert_ptr_equal(data, s_untouched);
    //  A short buffer gets a truncated, still terminated reason.
    char error[8];
    memset(error, 'x', sizeof error);
    assert_int_equal(zm_msgpack_to_json(BYTES("\xc1"), &text, error, sizeof error), ZMESH_EINVAL);
    assert_string_equal(error, "bad Mes");
    memset(error, 'x', sizeof error);
    assert_int_equal(zm_json_to_msgpack("[", 1, &data, &size, error, 1), ZMESH_EINVAL);
    assert_int_equal(error[0], '\0');
    assert_int_equal(error[1], 'x');
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_round_trips_scalars),
        cmocka_unit_test(test_json_round_trips_nested_structures),
        cmocka_unit_test(test_json_keeps_key_order),
        cmocka_unit_test(test_json_packs_smallest_encodings),
        cmocka_unit_test(test_json_accepts_surrounding_whitespace),
        cmocka_unit_test(test_json_decodes_every_integer_width),
        cmocka_unit_test(test_json_decodes_every_other_width),
        cmocka_unit_test(test_json_maps_bin_and_ext),
        cmocka_unit_test(test_json_stringifies_non_str_map_keys),
        cmocka_unit_test(test_json_rejects_duplicate_map_keys),
        cmocka_unit_test(test_json_rejects_keys_nested_in_keys_that_keep_growing),
        cmocka_unit_test(test_json_rejects_truncation_at_every_offset),
        cmocka_unit_test(test_json_rejects_trailing_bytes),
        cmocka_unit_test(test_json_rejects_reserved_c1),
        cmocka_unit_test(test_json_rejects_counts_beyond_the_bytes),
        cmocka_unit_test(test_json_limits_msgpack_nesting_to_64),
        cmocka_unit_test(test_json_rejects_100000_levels_without_overflow),
        cmocka_unit_test(test_json_limits_json_nesting_to_64),
        cmocka_unit_test(test_json_rejects_invalid_utf8),
        cmocka_unit_test(test_json_rejects_nan_and_infinity),
        cmocka_unit_test(test_json_rejects_bad_json_text),
        cmocka_unit_test(test_json_rejects_empty_input),
        cmocka_unit_test(test_json_rejects_two_values),
        cmocka_unit_test(test_json_error_argument_is_optional),
    };
    return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
