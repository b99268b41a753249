//  Unit tests for the kv state machine (workers/kv.c): each op, reads and
//  writes told apart, compare-and-set, bad requests, snapshots that depend
//  only on the state, restore, and the digest.
#include "kv.h"
#include "zm_json.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

//  Sends the JSON request to kv as a write or a read; returns the status
//  and the reply as JSON in reply (a string reply comes back quoted).
static int
s_call(zw_kv_t *kv, bool write, const char *json, char *reply, size_t size)
{
    char *body;
    size_t body_size;
    assert_int_equal(zm_json_to_msgpack(json, strlen(json), &body, &body_size, NULL, 0), ZMESH_OK);
    zmesh_msg_t *answer = NULL;
    int rc = zw_kv_handle(kv, write, body, body_size, &answer);
    free(body);
    assert_non_null(answer);
    char *text;
    assert_int_equal(zm_msgpack_to_json(zmesh_msg_data(answer), zmesh_msg_size(answer), &text,
                                        NULL, 0),
                     ZMESH_OK);
    snprintf(reply, size, "%s", text);
    free(text);
    zmesh_msg_destroy(&answer);
    return rc;
}

#define S_OK(kv, write, json, expected)                                         \
    do {                                                                        \
        char reply_[512];                                                       \
        assert_int_equal(s_call(kv, write, json, reply_, sizeof reply_), ZMESH_OK); \
        assert_string_equal(reply_, expected);                                  \
    } while (0)

#define S_REFUSED(kv, write, json, fragment)                                    \
    do {                                                                        \
        char reply_[512];                                                       \
        assert_int_equal(s_call(kv, write, json, reply_, sizeof reply_), ZMESH_EHANDLER); \
        assert_non_null(strstr(reply_, fragment));                              \
    } while (0)

static void
test_put_get_delete(void **unused)
{
    (void) unused;
    zw_kv_t *kv = zw_kv_new();
    S_OK(kv, false, "{\"op\":\"get\",\"key\":\"a\"}", "{\"found\":false}");
    S_OK(kv, true, "{\"op\":\"put\",\"key\":\"a\",\"value\":{\"n\":[1,2]}}", "{\"ok\":true}");
    S_OK(kv, false, "{\"op\":\"get\",\"key\":\"a\"}", "{\"found\":true,\"value\":{\"n\":[1,2]}}");
    S_OK(kv, true, "{\"op\":\"put\",\"key\":\"a\",\"value\":null}", "{\"ok\":true}");
    S_OK(kv, false, "{\"op\":\"get\",\"key\":\"a\"}", "{\"found\":true,\"value\":null}");
    assert_int_equal(zw_kv_size(kv), 1);
    S_OK(kv, true, "{\"op\":\"delete\",\"key\":\"a\"}", "{\"deleted\":true}");
    S_OK(kv, true, "{\"op\":\"delete\",\"key\":\"a\"}", "{\"deleted\":false}");
    assert_int_equal(zw_kv_size(kv), 0);
    zw_kv_destroy(&kv);
    zw_kv_destroy(&kv);             //  a second destroy is harmless
}

static void
test_compare_and_set(void **unused)
{
    (void) unused;
    zw_kv_t *kv = zw_kv_new();
    //  nil expected: only while absent.
    S_OK(kv, true, "{\"op\":\"cas\",\"key\":\"c\",\"expected\":null,\"value\":1}",
         "{\"ok\":true,\"value\":1}");
    S_OK(kv, true, "{\"op\":\"cas\",\"key\":\"c\",\"expected\":null,\"value\":2}",
         "{\"ok\":false,\"value\":1}");
    S_OK(kv, true, "{\"op\":\"cas\",\"key\":\"c\",\"expected\":5,\"value\":2}",
         "{\"ok\":false,\"value\":1}");
    S_OK(kv, true, "{\"op\":\"cas\",\"key\":\"c\",\"expected\":1,\"value\":\"two\"}",
         "{\"ok\":true,\"value\":\"two\"}");
    S_OK(kv, true, "{\"op\":\"cas\",\"key\":\"missing\",\"expected\":1,\"value\":2}",
         "{\"ok\":false,\"value\":null}");
    S_REFUSED(kv, true, "{\"op\":\"cas\",\"key\":\"c\",\"value\":2}", "cas needs expected");
    zw_kv_destroy(&kv);
}

//  The same value in two encodings (uint32 and positive fixint) compares
//  equal: values are packed again before they are kept or compared.
static void
test_values_compare_by_value(void **unused)
{
    (void) unused;
    zw_kv_t *kv = zw_kv_new();
    //  {"op":"put","key":"k","value":7 as uint32}
    const uint8_t put[] = {0x83, 0xa2, 'o', 'p', 0xa3, 'p', 'u', 't', 0xa3, 'k', 'e', 'y', 0xa1,
                           'k', 0xa5, 'v', 'a', 'l', 'u', 'e', 0xce, 0, 0, 0, 7};
    zmesh_msg_t *reply = NULL;
    assert_int_equal(zw_kv_handle(kv, true, put, sizeof put, &reply), ZMESH_OK);
    zmesh_msg_destroy(&reply);
    S_OK(kv, true, "{\"op\":\"cas\",\"key\":\"k\",\"expected\":7,\"value\":8}",
         "{\"ok\":true,\"value\":8}");
    zw_kv_destroy(&kv);
}

static void
test_reads_and_writes_told_apart(void **unused)
{
    (void) unused;
    zw_kv_t *kv = zw_kv_new();
    S_REFUSED(kv, false, "{\"op\":\"put\",\"key\":\"a\",\"value\":1}", "are writes");
    S_REFUSED(kv, false, "{\"op\":\"delete\",\"key\":\"a\"}", "are writes");
    S_REFUSED(kv, true, "{\"op\":\"get\",\"key\":\"a\"}", "is a read");
    S_REFUSED(kv, true, "{\"op\":\"digest\"}", "is a read");
    //  The text tells a user of the CLI what to do: the flag that makes a call a write.
    S_REFUSED(kv, false, "{\"op\":\"put\",\"key\":\"a\",\"value\":1}", "with --write");
    S_REFUSED(kv, true, "{\"op\":\"get\",\"key\":\"a\"}", "without --write");
    assert_int_equal(zw_kv_size(kv), 0);        //  a refused put changed nothing

    const char *write = "{\"op\":\"put\",\"key\":\"a\",\"value\":1}";
    const char *read = "{\"op\":\"get\",\"key\":\"a\"}";
    char *body;
    size_t size;
    assert_int_equal(zm_json_to_msgpack(write, strlen(write), &body, &size, NULL, 0), ZMESH_OK);
    assert_true(zw_kv_is_write(body, size));
    free(body);
    assert_int_equal(zm_json_to_msgpack(read, strlen(read), &body, &size, NULL, 0), ZMESH_OK);
    assert_false(zw_kv_is_write(body, size));
    free(body);
    assert_false(zw_kv_is_write("\xc1", 1));
    assert_false(zw_kv_is_write(NULL, 0));
    zw_kv_destroy(&kv);
}

static void
test_bad_requests(void **unused)
{
    (void) unused;
    zw_kv_t *kv = zw_kv_new();
    S_REFUSED(kv, true, "[1,2]", "a request is a map");
    S_REFUSED(kv, true, "{\"key\":\"a\"}", "a request is a map");
    S_REFUSED(kv, true, "{\"op\":7}", "a request is a map");
    S_REFUSED(kv, true, "{\"op\":\"increment\",\"key\":\"a\"}", "op must be");
    S_REFUSED(kv, true, "{\"op\":\"put\",\"value\":1}", "key must be");
    S_REFUSED(kv, true, "{\"op\":\"put\",\"key\":\"\",\"value\":1}", "key must be");
    S_REFUSED(kv, true, "{\"op\":\"put\",\"key\":3,\"value\":1}", "key must be");
    S_REFUSED(kv, true, "{\"op\":\"put\",\"key\":\"a\\u0000b\",\"value\":1}", "key must be");
    S_REFUSED(kv, true, "{\"op\":\"put\",\"key\":\"a\"}", "put needs a value");
    char json[1200];
    snprintf(json, sizeof json, "{\"op\":\"put\",\"key\":\"%01025d\",\"value\":1}", 0);
    S_REFUSED(kv, true, json, "key must be");
    snprintf(json, sizeof json, "{\"op\":\"put\",\"key\":\"%01024d\",\"value\":1}", 0);
    S_OK(kv, true, json, "{\"ok\":true}");
    //  Bytes that are not MessagePack at all, and trailing bytes.
    zmesh_msg_t *reply = NULL;
    assert_int_equal(zw_kv_handle(kv, true, "\xc1", 1, &reply), ZMESH_EHANDLER);
    zmesh_msg_destroy(&reply);
    assert_int_equal(zw_kv_handle(kv, false, "\x80\x80", 2, &reply), ZMESH_EHANDLER);
    zmesh_msg_destroy(&reply);
    assert_int_equal(zw_kv_size(kv), 1);
    zw_kv_destroy(&kv);
}

//  Two replicas that reach the same state by different paths hold the same
//  snapshot bytes and digest; a restored copy too.
static void
test_snapshot_depends_on_state_only(void **unused)
{
    (void) unused;
    zw_kv_t *a = zw_kv_new(), *b = zw_kv_new();
    char digest_a[ZW_KV_DIGEST_HEX], digest_b[ZW_KV_DIGEST_HEX];
    zw_kv_digest(a, digest_a);
    zw_kv_digest(b, digest_b);
    assert_string_equal(digest_a, digest_b);
    assert_int_equal(strlen(digest_a), 40);
    for (int i = 0; i < 200; i++) {
        char json[128];
        snprintf(json, sizeof json, "{\"op\":\"put\",\"key\":\"k%d\",\"value\":%d}", i, i);
        S_OK(a, true, json, "{\"ok\":true}");
        snprintf(json, sizeof json, "{\"op\":\"put\",\"key\":\"k%d\",\"value\":%d}", 199 - i,
                 199 - i);
        S_OK(b, true, json, "{\"ok\":true}");
    }
    S_OK(b, true, "{\"op\":\"put\",\"key\":\"extra\",\"value\":1}", "{\"ok\":true}");
    zw_kv_digest(a, digest_a);
    zw_kv_digest(b, digest_b);
    assert_string_not_equal(digest_a, digest_b);
    S_OK(b, true, "{\"op\":\"delete\",\"key\":\"extra\"}", "{\"deleted\":true}");
    zw_kv_digest(b, digest_b);
    assert_string_equal(digest_a, digest_b);

    void *snap_a, *snap_b;
    size_t size_a, size_b;
    zw_kv_snapshot(a, &snap_a, &size_a);
    zw_kv_snapshot(b, &snap_b, &size_b);
    assert_int_equal(size_a, size_b);
    assert_memory_equal(snap_a, snap_b, size_a);

    zw_kv_t *c = zw_kv_new();
    S_OK(c, true, "{\"op\":\"put\",\"key\":\"old\",\"value\":1}", "{\"ok\":true}");
    assert_true(zw_kv_restore(c, snap_a, size_a));
    assert_int_equal(zw_kv_size(c), 200);
    char digest_c[ZW_KV_DIGEST_HEX];
    zw_kv_digest(c, digest_c);
    assert_string_equal(digest_a, digest_c);
    S_OK(c, false, "{\"op\":\"get\",\"key\":\"k7\"}", "{\"found\":true,\"value\":7}");
    S_OK(c, false, "{\"op\":\"get\",\"key\":\"old\"}", "{\"found\":false}");
    char reply[512];
    assert_int_equal(s_call(c, false, "{\"op\":\"digest\"}", reply, sizeof reply), ZMESH_OK);
    assert_non_null(strstr(reply, digest_a));
    assert_non_null(strstr(reply, "\"keys\":200"));
    free(snap_a);
    free(snap_b);
    zw_kv_destroy(&a);
    zw_kv_destroy(&b);
    zw_kv_destroy(&c);
}

static void
test_restore_refuses_junk(void **unused)
{
    (void) unused;
    zw_kv_t *kv = zw_kv_new();
    S_OK(kv, true, "{\"op\":\"put\",\"key\":\"keep\",\"value\":1}", "{\"ok\":true}");
    assert_false(zw_kv_restore(kv, "\xc1", 1));
    assert_false(zw_kv_restore(kv, "\x91\x01", 2));             //  an array
    assert_false(zw_kv_restore(kv, "\x81\x01\x01", 3));         //  a key that is not a string
    assert_false(zw_kv_restore(kv, "\x82\xa1k\x01\xa1k\x02", 7));   //  a key twice
    assert_false(zw_kv_restore(kv, "\x80\x80", 2));             //  trailing bytes
    assert_false(zw_kv_restore(kv, NULL, 0));
    assert_int_equal(zw_kv_size(kv), 1);                        //  unchanged
    assert_true(zw_kv_restore(kv, "\x80", 1));                  //  the empty state
    assert_int_equal(zw_kv_size(kv), 0);
    zw_kv_destroy(&kv);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_delete),
        cmocka_unit_test(test_compare_and_set),
        cmocka_unit_test(test_values_compare_by_value),
        cmocka_unit_test(test_reads_and_writes_told_apart),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_snapshot_depends_on_state_only),
        cmocka_unit_test(test_restore_refuses_junk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
