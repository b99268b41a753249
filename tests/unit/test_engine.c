//  test_engine.c - unit tests of the broker's routing logic (broker/engine.c with
//  its services, worker sessions and calls), driven like the transport drives it:
//  fabricated ROUTER messages [routing][empty][header][body?] built with the codec,
//  an explicit `now`, and every outbox message popped and decoded, so each test
//  pins down exactly who is told what, and which counters move. No sockets, no
//  sleeps, no clock: time is whatever the test says it is.

#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine.h"

#define S_T0 100000                 //  ms: when the engine starts; tests count from here
#define S_GRACE_MS 500              //  fixture config
#define S_MAX_QUEUE 3
#define S_MAX_BODY 64
#define S_HEARTBEAT_MS 1000         //  every test worker's READY
#define S_LIVENESS 3
#define S_HEX_MAX (2 * 255 + 1)

//  Bytes of one frame; literals may hold NUL bytes.
typedef struct {
    const char *data;
    size_t size;
} s_bytes_t;

#define S_BYTES(literal) ((s_bytes_t){literal, sizeof(literal) - 1})
#define S_EMPTY S_BYTES("")
#define S_BODY S_BYTES("\x81\xa1x\x93\x01\x02\x03")     //  {"x": [1, 2, 3]}, ZMP.md 4.3
#define S_ANSWER S_BYTES("\xa6" "answer")              //  "answer"

//  One message popped from the outbox.
typedef struct {
    char peer[S_HEX_MAX];       //  destination routing id, lowercase hex
    zm_proto_t command;         //  decoded; owns its body
} s_out_t;

//  A zmesh.status reply, unpacked.
typedef struct {
    zframe_t *body;             //  owned: the reply body; objects point into it
    msgpack_unpacked unpacked;  //  owned
    const msgpack_object *root; //  borrowed from unpacked
} s_status_t;

//  The last message popped and the last status read live here, not on a
//  test's stack: a failed assertion longjmps out of the helper, and the next
//  pop or the teardown frees them, so failing tests leak nothing either.
static s_out_t s_out;
static s_status_t s_status;

//  A body of one positive fixint, 0 to 9: small distinct payloads.
static s_bytes_t
s_fixint(int value)
{
    static const char fixints[] = "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09";
    assert_true(value >= 0 && value <= 9);
    return (s_bytes_t){fixints + value, 1};
}

static void
s_hex(char *buffer, const void *data, size_t size)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *bytes = data;
    for (size_t i = 0; i < size && i < 255; i++) {
        buffer[2 * i] = digits[bytes[i] >> 4];
        buffer[2 * i + 1] = digits[bytes[i] & 15];
    }
    buffer[2 * (size < 255 ? size : 255)] = '\0';
}

//  ---------------------------------------------------------------------------
//  Fixtures

static int
s_setup_with(void **state, size_t max_services)
{
    zm_engine_config_t config;
    zm_engine_config_defaults(&config);
    config.grace_ms = S_GRACE_MS;
    config.max_queue = S_MAX_QUEUE;
    config.limits.max_body = S_MAX_BODY;
    if (max_services)
        config.max_services = max_services;
    *state = zm_engine_new(&config, S_T0);
    return 0;
}

static int
s_setup(void **state)
{
    return s_setup_with(state, 0);
}

static int
s_setup_two_services(void **state)
{
    return s_setup_with(state, 2);
}

static void
s_status_free(void)
{
    msgpack_unpacked_destroy(&s_status.unpacked);   //  safe when zeroed or destroyed
    zframe_destroy(&s_status.body);
    s_status.root = NULL;
}

static int
s_teardown(void **state)
{
    zm_proto_reset(&s_out.command);
    s_status_free();
    zm_engine_t *engine = *state;
    zm_engine_destroy(&engine);
    assert_null(engine);
    return 0;
}

//  ---------------------------------------------------------------------------
//  Input: messages as the ROUTER gives them

//  Feeds a command from peer; the engine must take the message.
static void
s_feed(zm_engine_t *engine, const char *peer, zm_proto_t *command, int64_t now)
{
    zmsg_t *msg = zm_proto_encode(command);
    zframe_t *routing = zframe_new(peer, strlen(peer));
    zmsg_prepend(msg, &routing);
    zm_engine_on_message(engine, &msg, now);
    assert_null(msg);
}

//  Feeds raw frames from peer, after its routing frame: for malformed input.
static void
s_feed_raw(zm_engine_t *engine, const char *peer, const s_bytes_t *frames, size_t count,
           int64_t now)
{
    zmsg_t *msg = zmsg_new();
    zframe_t *routing = zframe_new(peer, strlen(peer));
    zmsg_append(msg, &routing);
    for (size_t i = 0; i < count; i++) {
        zframe_t *frame = zframe_new(frames[i].data, frames[i].size);
        zmsg_append(msg, &frame);
    }
    zm_engine_on_message(engine, &msg, now);
    assert_null(msg);
}

static void
s_call(zm_engine_t *engine, const char *client, uint64_t request_id, const char *service,
       uint32_t timeout_ms, s_bytes_t body, int64_t now)
{
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = ZM_CMD_CALL;
    command.id = request_id;
    snprintf(command.service, sizeof command.service, "%s", service);
    command.timeout_ms = timeout_ms;
    command.body = zframe_new(body.data, body.size);
    s_feed(engine, client, &command, now);
}

static void
s_ready(zm_engine_t *engine, const char *worker, const char *service, uint32_t slots,
        int64_t now)
{
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = ZM_CMD_READY;
    snprintf(command.service, sizeof command.service, "%s", service);
    command.slots = slots;
    command.heartbeat_ms = S_HEARTBEAT_MS;
    command.liveness = S_LIVENESS;
    s_feed(engine, worker, &command, now);
}

//  A REPLY as a worker sends it: ticket and status.
static void
s_answer(zm_engine_t *engine, const char *worker, uint64_t ticket, uint32_t status,
         s_bytes_t body, int64_t now)
{
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = ZM_CMD_REPLY;
    command.id = ticket;
    command.status = status;
    command.body = zframe_new(body.data, body.size);
    s_feed(engine, worker, &command, now);
}

static void
s_heartbeat(zm_engine_t *engine, const char *peer, int64_t now)
{
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = ZM_CMD_HEARTBEAT;
    s_feed(engine, peer, &command, now);
}

//  A worker leaving on its own: DISCONNECT 200.
static void
s_leave(zm_engine_t *engine, const char *peer, int64_t now)
{
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = ZM_CMD_DISCONNECT;
    command.status = ZM_STATUS_OK;
    snprintf(command.reason, sizeof command.reason, "bye");
    s_feed(engine, peer, &command, now);
}

static void
s_send_failed(zm_engine_t *engine, const char *peer, bool full, int64_t now)
{
    zframe_t *routing = zframe_new(peer, strlen(peer));
    zm_engine_on_send_failed(engine, routing, full, now);
    zframe_destroy(&routing);
}

//  ---------------------------------------------------------------------------
//  Output: the outbox, message by message

//  Pops and decodes the next outbox message; fails if there is none or if
//  the engine produced bytes its own codec refuses.
static s_out_t *
s_pop(zm_engine_t *engine)
{
    s_out_t *out = &s_out;
    zm_proto_reset(&out->command);
    zmsg_t *msg = zm_engine_outbox_pop(engine);
    if (!msg)
        fail_msg("the outbox is empty, a message was expected");
    zframe_t *routing = zmsg_pop(msg);
    if (!routing) {
        zmsg_destroy(&msg);
        fail_msg("an outbox message without a routing frame");
    }
    s_hex(out->peer, zframe_data(routing), zframe_size(routing));
    zframe_destroy(&routing);
    zm_proto_limits_t limits = {.max_body = 1 << 20, .check_body = true, .max_depth = 64};
    zm_proto_error_t error;
    bool ok = zm_proto_decode(&out->command, msg, &limits, &error);
    size_t frames = zmsg_size(msg);
    zmsg_destroy(&msg);
    if (!ok)
        fail_msg("outbox message to %s does not decode: %s", out->peer, error.reason);
    assert_int_equal(frames, 2);                //  delimiter + header; the body was taken
    return out;
}

static void
s_assert_peer(const s_out_t *out, const char *peer)
{
    char expected[S_HEX_MAX];
    s_hex(expected, peer, strlen(peer));
    if (strcmp(out->peer, expected) != 0)
        fail_msg("%s sent to %s, expected to %s (%s)", zm_proto_cmd_name(out->command.cmd),
                 out->peer, expected, peer);
}

static void
s_assert_cmd(const s_out_t *out, zm_cmd_t cmd)
{
    if (out->command.cmd != cmd)
        fail_msg("got %s, expected %s", zm_proto_cmd_name(out->command.cmd),
                 zm_proto_cmd_name(cmd));
}

static void
s_assert_body(zframe_t *body, s_bytes_t expected)
{
    assert_non_null(body);
    assert_int_equal(zframe_size(body), expected.size);
    assert_memory_equal(zframe_data(body), expected.data, expected.size);
}

//  Asserts body is a msgpack str (an error reason) containing part, if given.
static void
s_assert_reason(zframe_t *body, const char *part)
{
    assert_non_null(body);
    const uint8_t *data = zframe_data(body);
    size_t size = zframe_size(body), head = 1, length = 0;
    if (size >= 1 && (data[0] & 0xe0) == 0xa0)
        length = data[0] & 0x1f;
    else if (size >= 2 && data[0] == 0xd9) {
        length = data[1];
        head = 2;
    }
    else
        fail_msg("error body is not a short msgpack str");
    assert_int_equal(size, head + length);
    char text[256];
    memcpy(text, data + head, length);
    text[length] = '\0';
    if (part && !strstr(text, part))
        fail_msg("reason \"%s\" does not mention \"%s\"", text, part);
}

//  Expects a REQUEST to worker; returns its ticket.
static uint64_t
s_expect_request(zm_engine_t *engine, const char *worker, const char *service,
                 uint32_t timeout_ms, s_bytes_t body)
{
    const s_out_t *out = s_pop(engine);
    s_assert_cmd(out, ZM_CMD_REQUEST);
    s_assert_peer(out, worker);
    assert_string_equal(out->command.service, service);
    assert_int_equal(out->command.timeout_ms, timeout_ms);
    s_assert_body(out->command.body, body);
    assert_true(out->command.id != 0);
    return out->command.id;
}

//  Expects a REPLY to client carrying exactly body.
static void
s_expect_reply(zm_engine_t *engine, const char *client, uint64_t request_id, uint32_t status,
               s_bytes_t body)
{
    const s_out_t *out = s_pop(engine);
    s_assert_cmd(out, ZM_CMD_REPLY);
    s_assert_peer(out, client);
    assert_int_equal(out->command.id, request_id);
    assert_int_equal(out->command.status, status);
    s_assert_body(out->command.body, body);
}

//  Expects an error REPLY to client: status and a str reason mentioning part.
static void
s_expect_error(zm_engine_t *engine, const char *client, uint64_t request_id, uint32_t status,
               const char *part)
{
    const s_out_t *out = s_pop(engine);
    s_assert_cmd(out, ZM_CMD_REPLY);
    s_assert_peer(out, client);
    assert_int_equal(out->command.id, request_id);
    assert_int_equal(out->command.status, status);
    s_assert_reason(out->command.body, part);
}

//  Expects count error REPLYs to client, one per id, in any order: services
//  are visited in hash order, so answers across services come in no set order.
static void
s_expect_errors_any_order(zm_engine_t *engine, const char *client, uint32_t status,
                          const uint64_t *ids, size_t count)
{
    bool seen[64] = {false};
    assert_true(count <= 64);
    for (size_t n = 0; n < count; n++) {
        const s_out_t *out = s_pop(engine);
        s_assert_cmd(out, ZM_CMD_REPLY);
        s_assert_peer(out, client);
        assert_int_equal(out->command.status, status);
        s_assert_reason(out->command.body, NULL);
        size_t i = 0;
        while (i < count && (ids[i] != out->command.id || seen[i]))
            i++;
        if (i == count)
            fail_msg("unexpected or repeated REPLY for request id %" PRIu64, out->command.id);
        seen[i] = true;
    }
}

static void
s_expect_disconnect(zm_engine_t *engine, const char *peer, uint32_t status, const char *part)
{
    const s_out_t *out = s_pop(engine);
    s_assert_cmd(out, ZM_CMD_DISCONNECT);
    s_assert_peer(out, peer);
    assert_int_equal(out->command.status, status);
    if (part && !strstr(out->command.reason, part))
        fail_msg("DISCONNECT reason \"%s\" does not mention \"%s\"", out->command.reason, part);
}

static void
s_expect_heartbeat(zm_engine_t *engine, const char *peer)
{
    const s_out_t *out = s_pop(engine);
    s_assert_cmd(out, ZM_CMD_HEARTBEAT);
    s_assert_peer(out, peer);
}

static void
s_expect_empty(zm_engine_t *engine)
{
    if (zlistx_size(engine->outbox) == 0)
        return;
    const s_out_t *out = s_pop(engine);
    fail_msg("the outbox should be empty, holds %s to %s", zm_proto_cmd_name(out->command.cmd),
             out->peer);
}

//  Compares every counter, so an unexpected one moving fails too.
static void
s_assert_counters(const zm_engine_t *engine, const zm_counters_t *expected)
{
#define S_CHECK(name)                                                                              \
    if (engine->counters.name != expected->name)                                                   \
        fail_msg("counter " #name " is %" PRIu64 ", expected %" PRIu64, engine->counters.name,     \
                 expected->name);
    ZM_COUNTERS(S_CHECK)
#undef S_CHECK
}

#define S_COUNTERS(...) s_assert_counters(engine, &(zm_counters_t){__VA_ARGS__})

//  ---------------------------------------------------------------------------
//  zmesh.status, read back with msgpack-c

//  Calls zmesh.status as client "S" and unpacks the 200 reply into s_status.
static const s_status_t *
s_status_fetch(zm_engine_t *engine, int64_t now)
{
    s_status_free();
    s_call(engine, "S", 77, "zmesh.status", 0, S_BYTES("\xc0"), now);
    s_out_t *out = s_pop(engine);
    s_assert_cmd(out, ZM_CMD_REPLY);
    s_assert_peer(out, "S");
    assert_int_equal(out->command.id, 77);
    assert_int_equal(out->command.status, ZM_STATUS_OK);
    s_status.body = out->command.body;
    out->command.body = NULL;
    msgpack_unpacked_init(&s_status.unpacked);
    size_t offset = 0;
    int rc = msgpack_unpack_next(&s_status.unpacked, (const char *) zframe_data(s_status.body),
                                 zframe_size(s_status.body), &offset);
    assert_int_equal(rc, MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(offset, zframe_size(s_status.body));
    s_status.root = &s_status.unpacked.data;
    assert_int_equal(s_status.root->type, MSGPACK_OBJECT_MAP);
    return &s_status;
}

static bool
s_str_is(const msgpack_object *object, const char *text)
{
    return object->type == MSGPACK_OBJECT_STR && object->via.str.size == strlen(text)
        && memcmp(object->via.str.ptr, text, strlen(text)) == 0;
}

static const msgpack_object *
s_map_get(const msgpack_object *map, const char *key)
{
    assert_int_equal(map->type, MSGPACK_OBJECT_MAP);
    for (uint32_t i = 0; i < map->via.map.size; i++)
        if (s_str_is(&map->via.map.ptr[i].key, key))
            return &map->via.map.ptr[i].val;
    fail_msg("status map has no key \"%s\"", key);
    return NULL;
}

static uint64_t
s_map_uint(const msgpack_object *map, const char *key)
{
    const msgpack_object *value = s_map_get(map, key);
    assert_int_equal(value->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    return value->via.u64;
}

//  The entry of the array under key whose field is text, or NULL.
static const msgpack_object *
s_status_entry(const s_status_t *status, const char *key, const char *field, const char *text)
{
    const msgpack_object *array = s_map_get(status->root, key);
    assert_int_equal(array->type, MSGPACK_OBJECT_ARRAY);
    for (uint32_t i = 0; i < array->via.array.size; i++)
        if (s_str_is(s_map_get(&array->via.array.ptr[i], field), text))
            return &array->via.array.ptr[i];
    return NULL;
}

static uint32_t
s_status_count(const s_status_t *status, const char *key)
{
    const msgpack_object *array = s_map_get(status->root, key);
    assert_int_equal(array->type, MSGPACK_OBJECT_ARRAY);
    return array->via.array.size;
}

//  Asserts one service entry: workers, slots, inflight, queued, calls.
static void
s_assert_service(const s_status_t *status, const char *name, uint64_t workers, uint64_t slots,
                 uint64_t inflight, uint64_t queued, uint64_t calls)
{
    const msgpack_object *entry = s_status_entry(status, "services", "name", name);
    if (!entry)
        fail_msg("status lists no service \"%s\"", name);
    assert_int_equal(s_map_uint(entry, "workers"), workers);
    assert_int_equal(s_map_uint(entry, "slots"), slots);
    assert_int_equal(s_map_uint(entry, "inflight"), inflight);
    assert_int_equal(s_map_uint(entry, "queued"), queued);
    assert_int_equal(s_map_uint(entry, "calls"), calls);
}

//  ---------------------------------------------------------------------------
//  Dispatch and replies

static void
test_engine_dispatches_call_to_ready_worker(void **state)
{
    zm_engine_t *engine = *state;
    s_ready(engine, "W1", "echo", 1, S_T0);
    s_expect_empty(engine);                     //  READY has no acknowledgement
    s_call(engine, "C1", 7, "echo", 5000, S_BODY, S_T0 + 10);
    uint64_t ticket = s_expect_request(engine, "W1", "echo", 5000, S_BODY);
    s_expect_empty(engine);
    S_COUNTERS(.calls = 1);

    s_answer(engine, "W1", ticket, ZM_STATUS_OK, S_ANSWER, S_T0 + 20);
    s_expect_reply(engine, "C1", 7, ZM_STATUS_OK, S_ANSWER);
    s_expect_empty(engine);
    S_COUNTERS(.calls = 1, .replies = 1);

    //  The slot is free again: the next call goes straight out, with a new ticket.
    s_call(engine, "C1", 8, "echo", 0, S_BODY, S_T0 + 30);
    uint64_t next = s_expect_request(engine, "W1", "echo", 0, S_BODY);
    assert_true(next != ticket);
    s_expect_empty(engine);
    S_COUNTERS(.calls = 2, .replies = 1);
}

static void
test_engine_request_carries_time_left(void **state)
{
    zm_engine_t *engine = *state;
    s_call(engine, "C1", 1, "echo", 1000, s_fixint(1), S_T0);
    s_call(engine, "C1", 2, "echo", 0, s_fixint(2), S_T0 + 100);
    s_expect_empty(engine);
    s_ready(engine, "W1", "echo", 2, S_T0 + 300);
    s_expect_request(engine, "W1", "echo", 700, s_fixint(1));     //  1000 - 300 waited
    s_expect_request(engine, "W1", "echo", 0, s_fixint(2));       //  no deadline
    s_expect_empty(engine);
    S_COUNTERS(.calls = 2);
}

static void
test_engine_forwards_handler_error(void **state)
{
    zm_engine_t *engine = *state;
    s_ready(engine, "W1", "echo", 1, S_T0);
    s_call(engine, "C1", 3, "echo", 0, S_BODY, S_T0);
    uint64_t ticket = s_expect_request(engine, "W1", "echo", 0, S_BODY);
    s_answer(engine, "W1", ticket, ZM_STATUS_HANDLER_ERROR, S_BYTES("\xa4" "oops"), S_T0 + 5);
    s_expect_reply(engine, "C1", 3, ZM_STATUS_HANDLER_ERROR, S_BYTES("\xa4" "oops"));
    s_expect_empty(engine);
    S_COUNTERS(.calls = 1, .handler_errors = 1);    //  `replies` counts 200s only
}

static void
test_engine_matches_out_of_order_replies(void **state)
{
    zm_engine_t *engine = *state;
    s_ready(engine, "W1", "echo", 4, S_T0);
    uint64_t tickets[4];
    for (int i = 1; i <= 3; i++) {
        s_call(engine, "C1", (uint64_t) i, "echo", 0, s_fixint(i), S_T0 + i);
        tickets[i] = s_expect_request(engine, "W1", "echo", 0, s_fixint(i));
    }
    s_call(engine, "C2", 1, "echo", 0, s_fixint(9), S_T0 + 4);     //  same id, other client
    uint64_t other = s_expect_request(engine, "W1", "echo", 0, s_fixint(9));
    assert_true(tickets[1] != tickets[2] && tickets[2] != tickets[3] && tickets[3] != other);

    //  Each reply body is the request's number plus 5, so a mix-up shows.
    s_answer(engine, "W1", tickets[3], ZM_STATUS_OK, s_fixint(8), S_T0 + 10);
    s_expect_reply(engine, "C1", 3, ZM_STATUS_OK, s_fixint(8));
    s_answer(engine, "W1", other, ZM_STATUS_OK, s_fixint(0), S_T0 + 11);
    s_expect_reply(engine, "C2", 1, ZM_STATUS_OK, s_fixint(0));
    s_answer(engine, "W1", tickets[1], ZM_STATUS_OK, s_fixint(6), S_T0 + 12);
    s_expect_reply(engine, "C1", 1, ZM_STATUS_OK, s_fixint(6));
    s_answer(engine, "W1", tickets[2], ZM_STATUS_OK, s_fixint(7), S_T0 + 13);
    s_expect_reply(engine, "C1", 2, ZM_STATUS_OK, s_fixint(7));
    s_expect_empty(engine);
    S_COUNTERS(.calls = 4, .replies = 4);
}

//  ---------------------------------------------------------------------------
//  Least recently used dispatch and slots

static void
test_engine_lru_rotates_over_workers(void **state)
{
    zm_engine_t *engine = *state;
    s_ready(engine, "W1", "echo", 1, S_T0);
    s_ready(engine, "W2", "echo", 1, S_T0 + 1);
    s_ready(engine, "W3", "echo", 1, S_T0 + 2);
    s_call(engine, "C1", 1, "echo", 0, s_fixint(1), S_T0 + 10);
    uint64_t t1 = s_expect_request(engine, "W1", "echo", 0, s_fixint(1));
    s_call(engine, "C1", 2, "echo", 0, s_fixint(2), S_T0 + 11);
    uint64_t t2 = s_expect_request(engine, "W2", "echo", 0, s_fixint(2));
    s_call(engine, "C1", 3, "echo", 0, s_fixint(3), S_T0 + 12);
    uint64_t t3 = s_expect_request(engine, "W3", "echo", 0, s_fixint(3));
    s_expect_empty(engine);

    //  Freed in the order W3, W1: that is the new order of the ready list.
    s_answer(engine, "W3", t3, ZM_STATUS_OK, s_fixint(3), S_T0 + 20);
    s_expect_reply(engine, "C1", 3, ZM_STATUS_OK, s_fixint(3));
    s_answer(engine, "W1", t1, ZM_STATUS_OK, s_fixint(1), S_T0 + 21);
    s_expect_reply(engine, "C1", 1, ZM_STATUS_OK, s_fixint(1));
    s_call(engine, "C1", 4, "echo", 0, s_fixint(4), S_T0 + 30);
    s_expect_request(engine, "W3", "echo", 0, s_fixint(4));
    s_call(engine, "C1", 5, "echo", 0, s_fixint(5), S_T0 + 31);
    s_expect_request(engine, "W1", "echo", 0, s_fixint(5));
    s_call(engine, "C1", 6, "echo", 0, s_fixint(6), S_T0 + 32);
    s_expect_empty(engine);                     //  every slot taken: queued

    s_answer(engine, "W2", t2, ZM_STATUS_OK, s_fixint(2), S_T0 + 40);
    s_expect_reply(engine, "C1", 2, ZM_STATUS_OK, s_fixint(2));
    s_expect_request(engine, "W2", "echo", 0, s_fixint(6));
    s_expect_empty(engine);
    S_COUNTERS(.calls = 6, .replies = 3);
}

static void
test_engine_worker_slots_fill_before_queueing(void **state)
{
    zm_engine_t *engine = *state;
    s_ready(engine, "W1", "echo", 3, S_T0);
    uint64_t tickets[4];
    for (int i = 1; i <= 3; i++) {
        s_call(engine, "C1", (uint64_t) i, "echo", 0, s_fixint(i), S_T0 + i);
        tickets[i] = s_expect_request(engine, "W1", "echo", 0, s_fixint(i));
    }
    s_call(engine, "C1", 4, "echo", 0, s_fixint(4), S_T0 + 4);
    s_expect_empty(engine);
    S_COUNTERS(.calls = 4);

    s_answer(engine, "W1", tickets[2], ZM_STATUS_OK, s_fixint(2), S_T0 + 10);
    s_expect_reply(engine, "C1", 2, ZM_STATUS_OK, s_fixint(2));
    s_expect_request(engine, "W1", "echo", 0, s_fixint(4));
    s_expect_empty(engine);
    S_COUNTERS(.calls = 4, .replies = 1);
}

static void
test_engine_lru_moves_worker_with_slots_left_to_back(void **state)
{
    zm_engine_t *engine = *state;
    s_ready(engine, "W1", "echo", 2, S_T0);
    s_ready(engine, "W2", "echo", 1, S_T0 + 1);
    s_call(engine, "C1", 1, "echo", 0, s_fixint(1), S_T0 + 10);
    s_expect_request(engine, "W1", "echo", 0, s_fixint(1));     //  W1 to the back
    s_call(engine, "C1", 2, "echo", 0, s_fixint(2), S_T0 + 11);
    uint64_t t2 = s_expect_request(engine, "W2", "echo", 0, s_fixint(2));
    s_call(engine, "C1", 3, "echo", 0, s_fixint(3), S_T0 + 12);
    s_expect_request(engine, "W1", "echo", 0, s_fixint(3));
    s_call(engine, "C1", 4, "echo", 0, s_fixint(4), S_T0 + 13);
    s_expect_empty(engine);
    s_answer(engine, "W2", t2, ZM_STATUS_OK, s_fixint(2), S_T0 + 20);
    s_expect_reply(engine, "C1", 2, ZM_STATUS_OK, s_fixint(2));
    s_expect_request(engine, "W2", "echo", 0, s_fixint(4));
    s_expect_empty(engine);
    S_COUNTERS(.calls = 4, .replies = 1);
}

//  ---------------------------------------------------------------------------
//  Queueing and its bound

static void
test_engine_queued_calls_dispatch_in_order(void **state)
{
    zm_engine_t *engine = *state;
    s_ready(engine, "W1", "echo", 1, S_T0);
    s_call(engine, "C1", 1, "echo", 0, s_fixint(1), S_T0 + 1);
    uint64_t ticket = s_expect_request(engine, "W1", "echo", 0, s_fixint(1));
    s_call(engine, "C2", 2, "echo", 0, s_fixint(2), S_T0 + 2);
    s_call(engine, "C3", 3, "echo", 0, s_fixint(3), S_T0 + 3);
    s_call(engine, "C1", 4, "echo", 0, s_fixint(4), S_T0 + 4);
    s_expect_empty(engine);

    static const char *const clients[] = {"", "C1", "C2", "C3", "C1"};
    for (int i = 1; i <= 4; i++) {
        s_answer(engine, "W1", ticket, ZM_STATUS_OK, s_fixint(i), S_T0 + 10 * i);
        s_expect_reply(engine, clients[i], (uint64_t) i, ZM_STATUS_OK, s_fixint(i));
        if (i < 4)
            ticket = s_expect_request(engine, "W1", "echo", 0, s_fixint(i + 1));
        s_expect_empty(engine);
    }
    S_COUNTERS(.calls = 4, .replies = 4);
}

static void
test_engine_rejects_call_over_queue_bound(void **state)
{
    zm_engine_t *engine = *state;
    s_ready(engine, "W1", "echo", 1, S_T0);
    s_call(engine, "C1", 1, "echo", 0, s_fixint(1), S_T0 + 1);
    uint64_t ticket = s_expect_request(engine, "W1", "echo", 0, s_fixint(1));
    for (int i = 2; i <= 1 + S_MAX_QUEUE; i++)
        s_call(engine, "C1", (uint64_t) i, "echo", 0, s_fixint(i), S_T0 + i);
    s_expect_empty(engine);
    S_COUNTERS(.calls = 4);

    s_call(engine, "C2", 9, "echo", 0, s_fixint(9), S_T0 + 10);
    s_expect_error(engine, "C2", 9, ZM_STATUS_BUSY, "full");
    s_expect_empty(engine);
    S_COUNTERS(.calls = 5, .rejected_busy = 1);

    //  The rejected call took no place: the queue still serves 2, 3, 4.
    s_answer(engine, "W1", ticket, ZM_STATUS_OK, s_fixint(1), S_T0 + 20);
    s_expect_reply(engine, "C1", 1, ZM_STATUS_OK, s_fixint(1));
    s_expect_request(engine, "W1", "echo", 0, s_fixint(2));
    s_expect_empty(engine);
    s_call(engine, "C2", 10, "echo", 0, s_fixint(0), S_T0 + 21);  //  room for one again
    s_expect_empty(engine);
    S_COUNTERS(.calls = 6, .replies = 1, .rejected_busy = 1);
}

//  ---------------------------------------------------------------------------
//  Grace: a service with no worker

static void
test_engine_no_worker_answers_404_after_grace(void **state)
{
    zm_engine_t *engine = *state;
    s_call(engine, "C1", 5, "nobody", 0, S_BODY, S_T0 + 100);
    s_expect_empty(engine);
    zm_engine_on_tick(engine, S_T0 + 100 + S_GRACE_MS - 1);
    s_expect_empty(engine);
    S_COUNTERS(.calls = 1);
    zm_engine_on_tick(engine, S_T0 + 100 + S_GRACE_MS);
    s_expect_error(engine, "C1", 5, ZM_STATUS_NO_SERVICE, NULL);
    s_expect_empty(engine);
    S_COUNTERS(.calls = 1, .rejected_no_service = 1);
    zm_engine_on_tick(engine, S_T0 + 100 + 2 * S_GRACE_MS);        //  answered once only
    s_expect_empty(engine);
}

static void
test_engine_worker_within_grace_gets_queued_call(void **state)
{
    zm_engine_t *engine = *state;
    s_call(engine, "C1", 1, "echo", 0, S_BODY, S_T0);
    zm_engine_on_tick(engine, S_T0 + 200);
    s_expect_empty(engine);
    s_ready(engine, "W1", "echo", 1, S_T0 + S_GRACE_MS - 1);
    uint64_t ticket = s_expect_request(engine, "W1", "echo", 0, S_BODY);
    zm_engine_on_tick(engine, S_T0 + S_GRACE_MS);
    s_expect_empty(engine);
    s_answer(engine, "W1", ticket, ZM_STATUS_OK, S_ANSWER, S_T0 + 600);
    s_expect_reply(engine, "C1", 1, ZM_STATUS_OK, S_ANSWER);
    s_expect_empty(engine);
    S_COUNTERS(.calls = 1, .replies = 1);
}

static void
test_engine_grace_restarts_when_last_worker_leaves(void **state)
{
    zm_engine_t *engine = *state;
    s_ready(engine, "W1", "echo", 1, S_T0);
    s_call(engine, "C1", 1, "echo", 0, s_fixint(1), S_T0 + 10);
    s_expect_request(engine, "W1", "echo", 0, s_fixint(1));
    s_call(engine, "C1", 2, "echo", 0, s_fixint(2), S_T0 + 20);
    s_call(engine, "C2", 3, "echo", 0, s_fixint(3), S_T0 + 30);
    zm_engine_on_tick(engine, S_T0 + 900);      //  queued far longer than the grace: fine
    s_expect_empty(engine);

    s_leave(engine, "W1", S_T0 + 950);
    s_expect_error(engine, "C1", 1, ZM_STATUS_WORKER_LOST, NULL);
    s_expect_empty(engine);
    zm_engine_on_tick(engine, S_T0 + 950 + S_GRACE_MS - 1);
    s_expect_empty(engine);
    zm_engine_on_tick(engine, S_T0 + 950 + S_GRACE_MS);
    s_expect_error(engine, "C1", 2, ZM_STATUS_NO_SERVICE, NULL);
    s_expect_error(engine, "C2", 3, ZM_STATUS_NO_SERVICE, NULL);
    s_expect_empty(engine);
    S_COUNTERS(.calls = 3, .worker_lost = 1, .rejected_no_service = 2);
}

//  ZMP.md 11.4: "When the call's own deadline comes before the end of its
//  grace, the deadline wins and the answer is 408", also when one tick sees
//  both passed (ticks are ZM_ENGINE_TICK_MS apart).
static void
test_engine_deadline_before_grace_wins(void **state)
{
    zm_engine_t *engine = *state;
    s_call(engine, "C1", 1, "nobody", 200, S_BODY, S_T0);
    zm_engine_on_tick(engine, S_T0 + 199);
    s_expect_empty(engine);
    zm_engine_on_tick(engine, S_T0 + 200);
    s_expect_error(engine, "C1", 1, ZM_STATUS_EXPIRED, NULL);
    s_expect_empty(engine);
    S_COUNTERS(.calls = 1, .expired = 1);

    //  Deadline at +450, grace ends at +500, the next tick comes at +500.
    s_call(engine, "C1", 2, "nobody", 450, S_BODY, S_T0 + 1000);
    zm_engine_on_tick(engine, S_T0 + 1000 + S_GRACE_MS);
    s_expect_error(engine, "C1", 2, ZM_STATUS_EXPIRED, NULL);
    s_expect_empty(engine);
    S_COUNTERS(.calls = 2, .expired = 2);
}

//  ---------------------------------------------------------------------------
//  Deadlines

static void
test_engine_queued_call_expires_at_deadline(void **state)
{
    zm_engine_t *engine = *state;
    s_ready(engine, "W1", "echo", 1, S_T0);
    s_call(engine, "C1", 1, "echo", 0, s_fixint(1), S_T0 + 10);
    uint64_t ticket = s_expect_request(engine, "W1", "echo", 0, s_fixint(1));
    s_call(engine, "C2", 2, "echo", 200, s_fixint(2), S_T0 + 20);
    zm_engine_on_tick(engine, S_T0 + 219);
    s_expect_empty(engine);
    zm_engine_on_tick(engine, S_T0 + 220);
    s_expect_error(engine, "C2", 2, ZM_STATUS_EXPIRED, NULL);
    s_expect_empty(engine);
    S_COUNTERS(.calls = 2, .expired = 1);

    //  The freed slot finds nothing to do: the expired call is gone for good.
    s_answer(engine, "W1", ticket, ZM_STATUS_OK, s_fixint(1), S_T0 + 300);
    s_expect_reply(engine, "C1", 1, ZM_STATUS_OK, s_fixint(1));
    s_expect_empty(engine);
    zm_engine_on_tick(engine, S_T0 + 400);
    s_expect_empty(engine);
    S_COUNTERS(.calls = 2, .replies = 1, .expired = 1);
}

static void
test_engine_held_call_expires_at_deadline(void **state)
{
    zm_engine_t *engine = *state;
    s_ready(engine, "W1", "echo", 1, S_T0);
    s_call(engine, "C1", 1, "echo", 300, s_fixint(1), S_T0);
    uint64_t ticket = s_expect_request(engine, "W1", "echo", 300, s_fixint(1));
    zm_engine_on_tick(engine, S_T0 + 299);
    s_expect_empty(engine);
    zm_engine_on_tick(engine, S_T0 + 300);
    s_expect_error(engine, "C1", 1, ZM_STATUS_EXPIRED, NULL);
    s_expect_empty(engine);
    S_COUNTERS(.calls = 1, .expired = 1);

    //  The worker keeps the slot until it answers: the next call waits.
    s_call(engine, "C2", 2, "echo", 0, s_fixint(2), S_T0 + 310);
    zm_engine_on_tick(engine, S_T0 + 400);      //  and the caller is answered once only
    s_expect_empty(engine);
    s_answer(engine, "W1", ticket, ZM_STATUS_OK, s_fixint(1), S_T0 + 500);
    s_expect_request(engine, "W1", "echo", 0, s_fixint(2));     //  the late reply goes nowhere
    s_expect_empty(engine);
    S_COUNTERS(.calls = 2, .expired = 1, .dropped_late_reply = 1);
}

static void
test_engine_lost_worker_skips_answered_call(void **state)
{
    zm_engine_t *engine = *state;
    s_ready(engine, "W1", "echo", 2, S_T0);
    s_call(engine, "C1", 1, "echo", 100, s_fixint(1), S_T0);
    s_expect_request(engine, "W1", "echo", 100, s_fixint(1));
    s_call(engine, "C2", 2, "echo", 0, s_fixint(2), S_T0);
    s_expect_request(engine, "W1", "echo", 0, s_fixint(2));
    zm_engine_on_tick(engine, S_T0 + 100);
    s_expect_error(engine, "C1", 1, ZM_STATUS_EXPIRED, NULL);
    s_leave(engine, "W1", S_T0 + 200);
    s_expect_error(engine, "C2", 2, ZM_STATUS_WORKER_LOST, NULL);   //  C1 was answered already
    s_expect_empty(engine);
    S_COUNTERS(.calls = 2, .expired = 1, .worker_lost = 1);
}

//  ZMP.md 11.3: "The broker never dispatches a call that has expired", also
//  when a slot frees up after the deadline but before the next tick.
static void
test_engine_never_dispatches_expired_call(void **state)
{
    zm_engine_t *engine = *state;
    s_ready(engine, "W1", "echo", 1, S_T0);
    s_call(engine, "C1", 1, "echo", 0, s_fixint(1), S_T0 + 10);
    uint64_t ticket = s_expect_request(engine, "W1", "echo", 0, s_fixint(1));
    s_call(engine, "C2", 2, "echo", 200, s_fixint(2), S_T0 + 20);
    s_expect_empty(engine);

    s_answer(engine, "W1", ticket, ZM_STATUS_OK, s_fixint(1), S_T0 + 250);     //  no tick yet
    s_expect_reply(engine, "C1", 1, ZM_STATUS_OK, s_fixint(1));
    zm_engine_on_tick(engine, S_T0 + 250);
    s_expect_error(engine, "C2", 2, ZM_STATUS_EXPIRED, NULL);
    s_expect_empty(engine);
    S_COUNTERS(.calls = 2, .replies = 1, .expired = 1);
}

//  ---------------------------------------------------------------------------
//  Heartbeats and expiry

static void
test_engine_heartbeats_idle_worker(void **state)
{
    zm_engine_t *engine = *state;
    s_ready(engine, "W1", "echo", 1, S_T0);
    zm_engine_on_tick(engine, S_T0 + S_HEARTBEAT_MS - 1);
    s_expect_empty(engine);
    zm_engine_on_tick(engine, S_T0 + S_HEARTBEAT_MS);
    s_expect_heartbeat(engine, "W1");
    s_expect_empty(engine);
    zm_engine_on_tick(engine, S_T0 + S_HEARTBEAT_MS + 500);     //  not more often
    s_expect_empty(engine);
    s_heartbeat(engine, "W1", S_T0 + 1600);     //  answering is no reason to send more
    s_expect_empty(engine);
    zm_engine_on_tick(engine, S_T0 + 2 * S_HEARTBEAT_MS);
    s_expect_heartbeat(engine, "W1");
    s_expect_empty(engine);
    S_COUNTERS(0);
}

static void
test_engine_request_postpones_heartbeat(void **state)
{
    zm_engine_t *engine = *state;
    s_ready(engine, "W1", "echo", 1, S_T0);
    s_call(engine, "C1", 1, "echo", 0, S_BODY, S_T0 + 600);
    s_expect_request(engine, "W1", "echo", 0, S_BODY);
    zm_engine_on_tick(engine, S_T0 + S_HEARTBEAT_MS);            //  sent 400 ms ago
    s_expect_empty(engine);
    zm_engine_on_tick(engine, S_T0 + 600 + S_HEARTBEAT_MS);
    s_expect_heartbeat(engine, "W1");
    s_expect_empty(engine);
    S_COUNTERS(.calls = 1);
}

static void
test_engine_worker_traffic_postpones_expiry(void **state)
{
    zm_engine_t *engine = *state;
    const int64_t dead_after = S_HEARTBEAT_MS * S_LIVENESS;
    s_ready(engine, "W1", "echo", 1, S_T0);
    s_call(engine, "C1", 1, "echo", 0, S_BODY, S_T0);
    uint64_t ticket = s_expect_request(engine, "W1", "echo", 0, S_BODY);
    s_heartbeat(engine, "W1", S_T0 + 2000);
    zm_engine_on_tick(engine, S_T0 + dead_after);       //  alive: heard at +2000
    s_expect_heartbeat(engine, "W1");
    s_answer(engine, "W1", ticket, ZM_STATUS_OK, S_ANSWER, S_T0 + 4000);
    s_expect_reply(engine, "C1", 1, ZM_STATUS_OK, S_ANSWER);
    zm_engine_on_tick(engine, S_T0 + 2000 + dead_after);        //  alive: heard at +4000
    s_expect_heartbeat(engine, "W1");
    zm_engine_on_tick(engine, S_T0 + 4000 + dead_after - 1);
    s_expect_heartbeat(engine, "W1");
    s_expect_empty(engine);
    S_COUNTERS(.calls = 1, .replies = 1);

    zm_engine_on_tick(engine, S_T0 + 4000 + dead_after);
    s_expect_empty(engine);                     //  nothing is sent to a dead worker
    S_COUNTERS(.calls = 1, .replies = 1, .workers_expired = 1);
    s_heartbeat(engine, "W1", S_T0 + 7001);     //  its session is over
    s_expect_disconnect(engine, "W1", ZM_STATUS_MALFORMED, "not registered");
    s_expect_empty(engine);
}

static void
test_engine_expired_worker_loses_inflight_calls(void **state)
{
    zm_engine_t *engine = *state;
    const int64_t dead_after = S_HEARTBEAT_MS * S_LIVENESS;
    s_ready(engine, "W1", "echo", 2, S_T0);
    s_call(engine, "C1", 1, "echo", 0, s_fixint(1), S_T0 + 1);
    s_expect_request(engine, "W1", "echo", 0, s_fixint(1));
    s_call(engine, "C2", 2, "echo", 0, s_fixint(2), S_T0 + 2);
    s_expect_request(engine, "W1", "echo", 0, s_fixint(2));
    s_call(engine, "C3", 3, "echo", 0, s_fixint(3), S_T0 + 3);
    s_expect_empty(engine);

    zm_engine_on_tick(engine, S_T0 + dead_after - 1);
    s_expect_heartbeat(engine, "W1");
    s_expect_empty(engine);
    zm_engine_on_tick(engine, S_T0 + dead_after);
    s_expect_error(engine, "C1", 1, ZM_STATUS_WORKER_LOST, NULL);
    s_expect_error(engine, "C2", 2, ZM_STATUS_WORKER_LOST, NULL);
    s_expect_empty(engine);
    S_COUNTERS(.calls = 3, .worker_lost = 2, .workers_expired = 1);

    //  The queued call was not the worker's: it waits for the next one.
    s_ready(engine, "W2", "echo", 1, S_T0 + dead_after + 100);
    s_expect_request(engine, "W2", "echo", 0, s_fixint(3));
    s_expect_empty(engine);
    S_COUNTERS(.calls = 3, .worker_lost = 2, .workers_expired = 1);
}

//  ---------------------------------------------------------------------------
//  Worker DISCONNECT and protocol violations

static void
test_engine_worker_disconnect_loses_inflight_calls(void **state)
{
    zm_engine_t *engine = *state;
    s_ready(engine, "W1", "echo", 2, S_T0);
    s_call(engine, "C1", 1, "echo", 0, s_fixint(1), S_T0 + 1);
    s_expect_request(engine, "W1", "echo", 0, s_fixint(1));
    s_call(engine, "C2", 2, "echo", 0, s_fixint(2), S_T0 + 2);
    s_expect_request(engine, "W1", "echo", 0, s_fixint(2));

    s_leave(engine, "W1", S_T0 + 10);
    s_expect_error(engine, "C1", 1, ZM_STATUS_WORKER_LOST, "lost");
    s_expect_error(engine, "C2", 2, ZM_STATUS_WORKER_LOST, "lost");
    s_expect_empty(engine);                     //  nothing back to the worker
    S_COUNTERS(.calls = 2, .worker_lost = 2);

    s_call(engine, "C1", 3, "echo", 0, s_fixint(3), S_T0 + 20);
    s_expect_empty(engine);                     //  queued: no worker left
    s_leave(engine, "W1", S_T0 + 30);           //  a second DISCONNECT: no session, no answer
    s_expect_empty(engine);
    S_COUNTERS(.calls = 3, .worker_lost = 2);
}

//  W1 and W2 serve echo; C1's call 1 is at W1, C2's call 2 at W2. Returns
//  the tickets.
static void
s_two_busy_workers(zm_engine_t *engine, uint64_t *t1_p, uint64_t *t2_p)
{
    s_ready(engine, "W1", "echo", 1, S_T0);
    s_ready(engine, "W2", "echo", 1, S_T0);
    s_call(engine, "C1", 1, "echo", 0, s_fixint(1), S_T0 + 1);
    *t1_p = s_expect_request(engine, "W1", "echo", 0, s_fixint(1));
    s_call(engine, "C2", 2, "echo", 0, s_fixint(2), S_T0 + 2);
    *t2_p = s_expect_request(engine, "W2", "echo", 0, s_fixint(2));
    s_expect_empty(engine);
}

//  After W1 broke the protocol: it got DISCONNECT status and is gone, C1's
//  call got 502, and W2, C2 and new calls carry on as if nothing happened.
static void
s_assert_w1_kicked(zm_engine_t *engine, uint32_t status, uint64_t t2)
{
    s_expect_disconnect(engine, "W1", status, NULL);
    s_expect_error(engine, "C1", 1, ZM_STATUS_WORKER_LOST, NULL);
    s_expect_empty(engine);
    S_COUNTERS(.calls = 2, .worker_lost = 1, .workers_kicked = 1);

    s_answer(engine, "W2", t2, ZM_STATUS_OK, s_fixint(2), S_T0 + 200);
    s_expect_reply(engine, "C2", 2, ZM_STATUS_OK, s_fixint(2));
    s_call(engine, "C3", 3, "echo", 0, s_fixint(3), S_T0 + 201);
    uint64_t t3 = s_expect_request(engine, "W2", "echo", 0, s_fixint(3));
    s_answer(engine, "W2", t3, ZM_STATUS_OK, s_fixint(3), S_T0 + 202);
    s_expect_reply(engine, "C3", 3, ZM_STATUS_OK, s_fixint(3));
    s_heartbeat(engine, "W1", S_T0 + 203);
    s_expect_disconnect(engine, "W1", ZM_STATUS_MALFORMED, "not registered");
    s_expect_empty(engine);
    S_COUNTERS(.calls = 3, .replies = 2, .worker_lost = 1, .workers_kicked = 1);
}

static void
test_engine_kicks_worker_sending_call(void **state)
{
    zm_engine_t *engine = *state;
    uint64_t t1, t2;
    s_two_busy_workers(engine, &t1, &t2);
    s_call(engine, "W1", 50, "echo", 0, S_BODY, S_T0 + 100);    //  neither run nor queued
    s_assert_w1_kicked(engine, ZM_STATUS_MALFORMED, t2);
}

static void
test_engine_kicks_worker_sending_second_ready(void **state)
{
    zm_engine_t *engine = *state;
    uint64_t t1, t2;
    s_two_busy_workers(engine, &t1, &t2);
    s_ready(engine, "W1", "echo", 1, S_T0 + 100);
    s_assert_w1_kicked(engine, ZM_STATUS_MALFORMED, t2);
}

static void
test_engine_kicks_worker_sending_request(void **state)
{
    zm_engine_t *engine = *state;
    uint64_t t1, t2;
    s_two_busy_workers(engine, &t1, &t2);
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = ZM_CMD_REQUEST;
    command.id = t1;
    snprintf(command.service, sizeof command.service, "echo");
    s_feed(engine, "W1", &command, S_T0 + 100);
    s_assert_w1_kicked(engine, ZM_STATUS_MALFORMED, t2);
}

static void
test_engine_kicks_worker_replying_404(void **state)
{
    zm_engine_t *engine = *state;
    uint64_t t1, t2;
    s_two_busy_workers(engine, &t1, &t2);
    s_answer(engine, "W1", t1, ZM_STATUS_NO_SERVICE, S_BYTES("\xa2no"), S_T0 + 100);
    s_assert_w1_kicked(engine, ZM_STATUS_MALFORMED, t2);
}

static void
test_engine_kicks_worker_sending_malformed_header(void **state)
{
    zm_engine_t *engine = *state;
    uint64_t t1, t2;
    s_two_busy_workers(engine, &t1, &t2);
    s_bytes_t frames[] = {S_EMPTY, S_BYTES("\x92\xa4ZMP1\xa9HEARTBEAT\x00")};  //  bytes after
    s_feed_raw(engine, "W1", frames, 2, S_T0 + 100);
    s_assert_w1_kicked(engine, ZM_STATUS_MALFORMED, t2);
}

static void
test_engine_kicks_worker_with_bad_version(void **state)
{
    zm_engine_t *engine = *state;
    uint64_t t1, t2;
    s_two_busy_workers(engine, &t1, &t2);
    s_bytes_t frames[] = {S_EMPTY, S_BYTES("\x92\xa4ZMP2\xa9HEARTBEAT")};
    s_feed_raw(engine, "W1", frames, 2, S_T0 + 100);
    s_assert_w1_kicked(engine, ZM_STATUS_BAD_VERSION, t2);
}

static void
test_engine_kicks_worker_sending_oversized_reply(void **state)
{
    zm_engine_t *engine = *state;
    uint64_t t1, t2;
    s_two_busy_workers(engine, &t1, &t2);
    char big[2 + 100];                          //  str 8 of 100 bytes: over S_MAX_BODY
    big[0] = (char) 0xd9;
    big[1] = 100;
    memset(big + 2, 'a', 100);
    s_answer(engine, "W1", t1, ZM_STATUS_OK, (s_bytes_t){big, sizeof big}, S_T0 + 100);
    s_assert_w1_kicked(engine, ZM_STATUS_TOO_BIG, t2);
}

//  ---------------------------------------------------------------------------
//  Stray replies

static void
test_engine_drops_reply_for_unknown_ticket(void **state)
{
    zm_engine_t *engine = *state;
    uint64_t t1, t2;
    s_two_busy_workers(engine, &t1, &t2);
    s_answer(engine, "W1", t1 + t2 + 1000, ZM_STATUS_OK, S_ANSWER, S_T0 + 10);
    s_expect_empty(engine);
    S_COUNTERS(.calls = 2, .dropped_late_reply = 1);

    s_answer(engine, "W1", t1, ZM_STATUS_OK, s_fixint(1), S_T0 + 20);   //  still registered
    s_expect_reply(engine, "C1", 1, ZM_STATUS_OK, s_fixint(1));
    s_answer(engine, "W1", t1, ZM_STATUS_OK, s_fixint(1), S_T0 + 30);   //  a duplicate
    s_expect_empty(engine);
    S_COUNTERS(.calls = 2, .replies = 1, .dropped_late_reply = 2);
}

static void
test_engine_drops_reply_for_other_workers_ticket(void **state)
{
    zm_engine_t *engine = *state;
    uint64_t t1, t2;
    s_two_busy_workers(engine, &t1, &t2);
    s_answer(engine, "W2", t1, ZM_STATUS_OK, S_ANSWER, S_T0 + 10);     //  W1's ticket
    s_expect_empty(engine);
    S_COUNTERS(.calls = 2, .dropped_late_reply = 1);

    s_answer(engine, "W1", t1, ZM_STATUS_OK, s_fixint(1), S_T0 + 20);
    s_expect_reply(engine, "C1", 1, ZM_STATUS_OK, s_fixint(1));
    s_answer(engine, "W2", t2, ZM_STATUS_OK, s_fixint(2), S_T0 + 21);
    s_expect_reply(engine, "C2", 2, ZM_STATUS_OK, s_fixint(2));
    s_expect_empty(engine);
    S_COUNTERS(.calls = 2, .replies = 2, .dropped_late_reply = 1);
}

//  Ticket 0 is never given (tickets start at 1), so a REPLY carrying it is a
//  stray. The risky step runs in a child first: if the engine aborts on it,
//  this test fails instead of the whole run dying.
static void
test_engine_drops_reply_for_ticket_zero(void **state)
{
    zm_engine_t *engine = *state;
    uint64_t t1, t2;
    s_two_busy_workers(engine, &t1, &t2);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        s_answer(engine, "W1", 0, ZM_STATUS_OK, S_ANSWER, S_T0 + 10);
        zm_engine_destroy(&engine);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("the engine died on a worker REPLY with ticket 0 (%s %d)",
                 WIFSIGNALED(status) ? "signal" : "exit",
                 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    s_answer(engine, "W1", 0, ZM_STATUS_OK, S_ANSWER, S_T0 + 10);
    s_expect_empty(engine);
    S_COUNTERS(.calls = 2, .dropped_late_reply = 1);
    s_answer(engine, "W1", t1, ZM_STATUS_OK, s_fixint(1), S_T0 + 20);
    s_expect_reply(engine, "C1", 1, ZM_STATUS_OK, s_fixint(1));
    s_expect_empty(engine);
}

//  ---------------------------------------------------------------------------
//  Peers that are not registered workers

static void
test_engine_disconnects_unregistered_heartbeat(void **state)
{
    zm_engine_t *engine = *state;
    s_heartbeat(engine, "X1", S_T0);
    s_expect_disconnect(engine, "X1", ZM_STATUS_MALFORMED, "not registered");
    s_expect_empty(engine);
    S_COUNTERS(0);
}

static void
test_engine_disconnects_unregistered_reply(void **state)
{
    zm_engine_t *engine = *state;
    s_answer(engine, "X1", 1, ZM_STATUS_OK, S_ANSWER, S_T0);
    s_expect_disconnect(engine, "X1", ZM_STATUS_MALFORMED, "not registered");
    s_expect_empty(engine);
    S_COUNTERS(.dropped_late_reply = 1);
}

static void
test_engine_ignores_unregistered_disconnect(void **state)
{
    zm_engine_t *engine = *state;
    s_leave(engine, "X1", S_T0);
    s_expect_empty(engine);
    S_COUNTERS(0);
}

static void
test_engine_rejects_request_from_client(void **state)
{
    zm_engine_t *engine = *state;
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = ZM_CMD_REQUEST;
    command.id = 12;
    snprintf(command.service, sizeof command.service, "echo");
    s_feed(engine, "C1", &command, S_T0);
    s_expect_error(engine, "C1", 12, ZM_STATUS_MALFORMED, NULL);
    s_expect_empty(engine);
    S_COUNTERS(.rejected_malformed = 1);
}

//  ---------------------------------------------------------------------------
//  Malformed input from clients: answered, then the next good call works

//  Proves that C1 is still served: a call dispatched to a fresh worker.
static void
s_assert_client_served(zm_engine_t *engine, int64_t now)
{
    s_ready(engine, "WOK", "ok", 1, now);
    s_call(engine, "C1", 100, "ok", 0, S_BODY, now);
    uint64_t ticket = s_expect_request(engine, "WOK", "ok", 0, S_BODY);
    s_answer(engine, "WOK", ticket, ZM_STATUS_OK, S_ANSWER, now);
    s_expect_reply(engine, "C1", 100, ZM_STATUS_OK, S_ANSWER);
    s_expect_empty(engine);
}

static void
test_engine_rejects_header_that_is_not_an_array(void **state)
{
    zm_engine_t *engine = *state;
    s_bytes_t frames[] = {S_EMPTY, S_BYTES("\xc0"), S_BODY};
    s_feed_raw(engine, "C1", frames, 3, S_T0);
    s_expect_error(engine, "C1", 0, ZM_STATUS_MALFORMED, "array");
    s_expect_empty(engine);
    S_COUNTERS(.rejected_malformed = 1);
    s_assert_client_served(engine, S_T0 + 1);
    S_COUNTERS(.calls = 1, .replies = 1, .rejected_malformed = 1);
}

static void
test_engine_rejects_missing_delimiter(void **state)
{
    zm_engine_t *engine = *state;
    s_bytes_t frames[] = {S_BYTES("\x94\xa4ZMP1\xa4" "CALL\x05\xa4" "echo"), S_BODY};
    s_feed_raw(engine, "C1", frames, 2, S_T0);
    s_expect_error(engine, "C1", 0, ZM_STATUS_MALFORMED, "delimiter");
    s_expect_empty(engine);
    s_feed_raw(engine, "C1", NULL, 0, S_T0);   //  the routing frame alone
    s_expect_error(engine, "C1", 0, ZM_STATUS_MALFORMED, NULL);
    s_expect_empty(engine);
    S_COUNTERS(.rejected_malformed = 2);
    s_assert_client_served(engine, S_T0 + 1);
}

static void
test_engine_rejects_bad_field_with_request_id(void **state)
{
    zm_engine_t *engine = *state;
    s_bytes_t space[] = {S_EMPTY, S_BYTES("\x94\xa4ZMP1\xa4" "CALL\x2a\xa4" "ec o"), S_BODY};
    s_feed_raw(engine, "C1", space, 3, S_T0);
    s_expect_error(engine, "C1", 42, ZM_STATUS_MALFORMED, "service");
    s_bytes_t no_body[] = {S_EMPTY, S_BYTES("\x94\xa4ZMP1\xa4" "CALL\x2b\xa4" "echo")};
    s_feed_raw(engine, "C1", no_body, 2, S_T0);
    s_expect_error(engine, "C1", 43, ZM_STATUS_MALFORMED, "frames");
    s_bytes_t cut_body[] = {S_EMPTY, S_BYTES("\x94\xa4ZMP1\xa4" "CALL\x2c\xa4" "echo"),
                            S_BYTES("\x92\x01")};
    s_feed_raw(engine, "C1", cut_body, 3, S_T0);
    s_expect_error(engine, "C1", 44, ZM_STATUS_MALFORMED, "body");
    s_expect_empty(engine);
    S_COUNTERS(.rejected_malformed = 3);
    s_assert_client_served(engine, S_T0 + 1);
}

static void
test_engine_rejects_bad_version(void **state)
{
    zm_engine_t *engine = *state;
    s_bytes_t frames[] = {S_EMPTY, S_BYTES("\x94\xa4ZMP2\xa4" "CALL\x05\xa4" "echo"), S_BODY};
    s_feed_raw(engine, "C1", frames, 3, S_T0);
    s_expect_error(engine, "C1", 0, ZM_STATUS_BAD_VERSION, "version");
    s_expect_empty(engine);
    S_COUNTERS(.rejected_bad_version = 1);
    s_assert_client_served(engine, S_T0 + 1);
}

static void
test_engine_rejects_oversized_body(void **state)
{
    zm_engine_t *engine = *state;
    char big[3 + S_MAX_BODY];                   //  str 8 of S_MAX_BODY + 1 bytes
    big[0] = (char) 0xd9;
    big[1] = (char) (S_MAX_BODY + 1);
    memset(big + 2, 'b', S_MAX_BODY + 1);
    s_call(engine, "C1", 6, "echo", 0, (s_bytes_t){big, sizeof big}, S_T0);
    s_expect_error(engine, "C1", 6, ZM_STATUS_TOO_BIG, "size");
    s_expect_empty(engine);
    S_COUNTERS(.rejected_too_big = 1);
    s_assert_client_served(engine, S_T0 + 1);
}

static void
test_engine_rejects_oversized_header(void **state)
{
    zm_engine_t *engine = *state;
    s_bytes_t head = S_BYTES("\x94\xa4ZMP1\xa4" "CALL\x01\xda\x01\xf8");  //  name: str 16
    char header[ZM_HEADER_MAX + 32];            //  ["ZMP1", "CALL", 1, <504 bytes>]
    memcpy(header, head.data, head.size);
    memset(header + head.size, 'n', 504);
    s_bytes_t frames[] = {S_EMPTY, {header, head.size + 504}, S_BODY};
    s_feed_raw(engine, "C1", frames, 3, S_T0);
    s_expect_error(engine, "C1", 0, ZM_STATUS_TOO_BIG, "512");
    s_expect_empty(engine);
    S_COUNTERS(.rejected_too_big = 1);
    s_assert_client_served(engine, S_T0 + 1);
}

//  ---------------------------------------------------------------------------
//  Refused registrations: a would-be worker reads DISCONNECT, never REPLY

#define S_READY_ECHO "\x96\xa4ZMP1\xa5READY\xa4" "echo"     //  then slots, heartbeat, liveness

static void
test_engine_disconnects_malformed_ready(void **state)
{
    zm_engine_t *engine = *state;
    s_bytes_t zero_slots[] = {S_EMPTY, S_BYTES(S_READY_ECHO "\x00\xcd\x03\xe8\x03")};  //  0 slots
    s_feed_raw(engine, "W1", zero_slots, 2, S_T0);
    s_expect_disconnect(engine, "W1", ZM_STATUS_MALFORMED, "slots");
    s_bytes_t with_body[] = {S_EMPTY, S_BYTES(S_READY_ECHO "\x01\xcd\x03\xe8\x03"), S_BODY};
    s_feed_raw(engine, "W1", with_body, 3, S_T0);
    s_expect_disconnect(engine, "W1", ZM_STATUS_MALFORMED, "frames");
    s_expect_empty(engine);
    s_call(engine, "C1", 1, "echo", 0, S_BODY, S_T0 + 1);       //  W1 did not register
    s_expect_empty(engine);
    s_ready(engine, "W1", "echo", 1, S_T0 + 2);                 //  a good READY still works
    s_expect_request(engine, "W1", "echo", 0, S_BODY);
    s_expect_empty(engine);
    //  ZMP.md 7.1: a refused READY counts rejected_malformed; no worker was kicked.
    S_COUNTERS(.calls = 1, .rejected_malformed = 2);
}

static void
test_engine_disconnects_reserved_ready(void **state)
{
    zm_engine_t *engine = *state;
    s_ready(engine, "W1", "zmesh.x", 1, S_T0);
    s_expect_disconnect(engine, "W1", ZM_STATUS_MALFORMED, "reserved");
    s_expect_empty(engine);
    const s_status_t *status = s_status_fetch(engine, S_T0 + 1);
    assert_int_equal(s_status_count(status, "workers"), 0);
    assert_int_equal(s_status_count(status, "services"), 0);
    s_expect_empty(engine);
    //  ZMP.md 7.1: a refused READY counts rejected_malformed; no worker was kicked.
    S_COUNTERS(.calls = 1, .replies = 1, .rejected_malformed = 1);
}

//  ZMP.md 7.1 and 14: a READY with another version or an oversized header is
//  answered DISCONNECT 505 / 413 like any other refused READY.
static void
test_engine_disconnects_ready_with_bad_version(void **state)
{
    zm_engine_t *engine = *state;
    s_bytes_t frames[] = {S_EMPTY, S_BYTES("\x96\xa4ZMP2\xa5READY\xa4" "echo\x01\xcd\x03\xe8\x03")};
    s_feed_raw(engine, "W1", frames, 2, S_T0);
    s_expect_disconnect(engine, "W1", ZM_STATUS_BAD_VERSION, NULL);
    s_expect_empty(engine);
    S_COUNTERS(.rejected_bad_version = 1);
}

static void
test_engine_disconnects_oversized_ready(void **state)
{
    zm_engine_t *engine = *state;
    s_bytes_t head = S_BYTES("\x96\xa4ZMP1\xa5READY\xda\x01\xf8");     //  name: str 16
    s_bytes_t tail = S_BYTES("\x01\xcd\x03\xe8\x03");                  //  1, 1000, 3
    char header[ZM_HEADER_MAX + 32];            //  READY with a 504-byte name
    memcpy(header, head.data, head.size);
    memset(header + head.size, 'n', 504);
    memcpy(header + head.size + 504, tail.data, tail.size);
    s_bytes_t frames[] = {S_EMPTY, {header, head.size + 504 + tail.size}};
    s_feed_raw(engine, "W1", frames, 2, S_T0);
    s_expect_disconnect(engine, "W1", ZM_STATUS_TOO_BIG, NULL);
    s_expect_empty(engine);
    S_COUNTERS(.rejected_too_big = 1);
}

//  ---------------------------------------------------------------------------
//  zmesh.* services

static void
test_engine_status_reports_services_workers_counters(void **state)
{
    zm_engine_t *engine = *state;
    s_ready(engine, "W1", "echo", 2, S_T0);
    for (int i = 1; i <= 3; i++)
        s_call(engine, "C1", (uint64_t) i, "echo", 0, s_fixint(i), S_T0 + 10);
    uint64_t ticket = s_expect_request(engine, "W1", "echo", 0, s_fixint(1));
    s_expect_request(engine, "W1", "echo", 0, s_fixint(2));
    s_answer(engine, "W1", ticket, ZM_STATUS_OK, s_fixint(1), S_T0 + 20);
    s_expect_reply(engine, "C1", 1, ZM_STATUS_OK, s_fixint(1));
    s_expect_request(engine, "W1", "echo", 0, s_fixint(3));
    s_call(engine, "C1", 4, "echo", 0, s_fixint(4), S_T0 + 30);
    s_call(engine, "C2", 5, "nobody", 0, s_fixint(5), S_T0 + 40);
    s_expect_empty(engine);

    const s_status_t *status = s_status_fetch(engine, S_T0 + 250);
    assert_true(s_str_is(s_map_get(status->root, "version"), "0.1.0"));
    assert_int_equal(s_map_uint(status->root, "uptime_ms"), 250);
    assert_int_equal(s_status_count(status, "services"), 2);
    s_assert_service(status, "echo", 1, 2, 2, 1, 4);
    s_assert_service(status, "nobody", 0, 0, 0, 1, 1);
    assert_int_equal(s_status_count(status, "workers"), 1);
    const msgpack_object *worker = s_status_entry(status, "workers", "id", "5731");  //  "W1"
    assert_non_null(worker);
    assert_true(s_str_is(s_map_get(worker, "service"), "echo"));
    assert_int_equal(s_map_uint(worker, "slots"), 2);
    assert_int_equal(s_map_uint(worker, "inflight"), 2);
    assert_int_equal(s_map_uint(worker, "served"), 1);
    assert_int_equal(s_map_uint(worker, "silent_ms"), 230);      //  last heard at +20
    const msgpack_object *counters = s_map_get(status->root, "counters");
    assert_int_equal(s_map_uint(counters, "calls"), 6);         //  counting this one
    assert_int_equal(s_map_uint(counters, "replies"), 1);
    assert_int_equal(s_map_uint(counters, "rejected_no_service"), 0);
    assert_int_equal(s_map_uint(counters, "dropped_late_reply"), 0);
    s_expect_empty(engine);
    S_COUNTERS(.calls = 6, .replies = 2);
}

static void
test_engine_other_reserved_name_gets_404_at_once(void **state)
{
    zm_engine_t *engine = *state;
    s_call(engine, "C1", 3, "zmesh.other", 0, S_BODY, S_T0);
    s_expect_error(engine, "C1", 3, ZM_STATUS_NO_SERVICE, NULL);
    s_expect_empty(engine);
    S_COUNTERS(.calls = 1, .rejected_no_service = 1);
    zm_engine_on_tick(engine, S_T0 + S_GRACE_MS);
    s_expect_empty(engine);
    assert_int_equal(zhashx_size(engine->services), 0);         //  no service was made
}

//  ---------------------------------------------------------------------------
//  Send failures reported by the transport

static void
test_engine_send_failure_retires_worker(void **state)
{
    zm_engine_t *engine = *state;
    uint64_t t1, t2;
    s_two_busy_workers(engine, &t1, &t2);
    s_send_failed(engine, "W1", false, S_T0 + 10);
    s_expect_error(engine, "C1", 1, ZM_STATUS_WORKER_LOST, NULL);
    s_expect_empty(engine);                     //  nothing more to a peer that is gone
    S_COUNTERS(.calls = 2, .worker_lost = 1, .workers_unreachable = 1);

    s_send_failed(engine, "W2", true, S_T0 + 11);
    s_expect_error(engine, "C2", 2, ZM_STATUS_WORKER_LOST, NULL);
    s_expect_empty(engine);
    S_COUNTERS(.calls = 2, .worker_lost = 2, .workers_unreachable = 2);
    s_call(engine, "C1", 3, "echo", 0, S_BODY, S_T0 + 12);      //  no worker left: queued
    s_expect_empty(engine);
}

static void
test_engine_send_failure_to_unknown_peer_is_counted(void **state)
{
    zm_engine_t *engine = *state;
    s_send_failed(engine, "C1", false, S_T0);
    s_expect_empty(engine);
    S_COUNTERS(.dropped_unroutable = 1);
    s_send_failed(engine, "C1", true, S_T0);
    s_expect_empty(engine);
    S_COUNTERS(.dropped_unroutable = 1, .dropped_peer_full = 1);
}

//  ---------------------------------------------------------------------------
//  The service table stays bounded

static void
test_engine_forgets_idle_services(void **state)
{
    zm_engine_t *engine = *state;
    char name[16];
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof name, "ghost%d", i);
        s_call(engine, "C1", (uint64_t) i + 1, name, 0, S_BODY, S_T0);
    }
    s_ready(engine, "W1", "echo", 1, S_T0);
    s_leave(engine, "W1", S_T0 + 100);
    s_expect_empty(engine);
    zm_engine_on_tick(engine, S_T0 + S_GRACE_MS - 1);
    s_expect_empty(engine);
    const s_status_t *status = s_status_fetch(engine, S_T0 + S_GRACE_MS - 1);
    assert_int_equal(s_status_count(status, "services"), 21);
    s_assert_service(status, "echo", 0, 0, 0, 0, 0);

    zm_engine_on_tick(engine, S_T0 + S_GRACE_MS);
    uint64_t ids[20];
    for (int i = 0; i < 20; i++)
        ids[i] = (uint64_t) i + 1;
    s_expect_errors_any_order(engine, "C1", ZM_STATUS_NO_SERVICE, ids, 20);
    s_expect_empty(engine);
    status = s_status_fetch(engine, S_T0 + S_GRACE_MS);
    assert_int_equal(s_status_count(status, "services"), 1);  //  echo: grace from +100
    zm_engine_on_tick(engine, S_T0 + 100 + S_GRACE_MS);
    status = s_status_fetch(engine, S_T0 + 100 + S_GRACE_MS);
    assert_int_equal(s_status_count(status, "services"), 0);
    s_expect_empty(engine);
    S_COUNTERS(.calls = 23, .replies = 3, .rejected_no_service = 20);
}

static void
test_engine_max_services_rejects_new_names(void **state)
{
    zm_engine_t *engine = *state;
    s_call(engine, "C1", 1, "a", 0, S_BODY, S_T0);
    s_call(engine, "C1", 2, "b", 0, S_BODY, S_T0);
    s_expect_empty(engine);
    s_call(engine, "C1", 3, "c", 0, S_BODY, S_T0 + 1);
    s_expect_error(engine, "C1", 3, ZM_STATUS_BUSY, "services");
    s_ready(engine, "W1", "c", 1, S_T0 + 2);
    s_expect_disconnect(engine, "W1", ZM_STATUS_BUSY, "services");
    s_expect_empty(engine);
    S_COUNTERS(.calls = 3, .rejected_busy = 2);                 //  the CALL and the READY
    s_call(engine, "C1", 4, "a", 0, S_BODY, S_T0 + 3);          //  known names still queue
    s_expect_empty(engine);
    const s_status_t *status = s_status_fetch(engine, S_T0 + 4);     //  status still works
    assert_int_equal(s_status_count(status, "services"), 2);

    zm_engine_on_tick(engine, S_T0 + S_GRACE_MS + 3);
    s_expect_errors_any_order(engine, "C1", ZM_STATUS_NO_SERVICE, (uint64_t[]){1, 2, 4}, 3);
    s_expect_empty(engine);
    s_ready(engine, "W1", "c", 1, S_T0 + 600);  //  room again once they are forgotten
    s_call(engine, "C1", 5, "c", 0, S_BODY, S_T0 + 601);
    s_expect_request(engine, "W1", "c", 0, S_BODY);
    s_expect_empty(engine);
    S_COUNTERS(.calls = 6, .replies = 1, .rejected_busy = 2, .rejected_no_service = 3);
}

//  ---------------------------------------------------------------------------
//  Peers that keep sending garbage

//  Sends one message the codec refuses (0xc1 is never valid msgpack).
static void
s_garbage(zm_engine_t *engine, const char *peer, int64_t now)
{
    const s_bytes_t frames[] = {S_EMPTY, S_BYTES("\xc1")};
    s_feed_raw(engine, peer, frames, 2, now);
    s_expect_error(engine, peer, 0, ZM_STATUS_MALFORMED, NULL);
}

static void
test_engine_kicks_peer_after_max_garbage(void **state)
{
    zm_engine_t *engine = *state;
    for (uint32_t i = 1; i < 16; i++) {
        s_garbage(engine, "C1", S_T0 + i);
        assert_false(zm_engine_take_kick(engine));
    }
    s_garbage(engine, "C1", S_T0 + 16);                 //  the 16th: answered, then kicked
    assert_true(zm_engine_take_kick(engine));
    assert_false(zm_engine_take_kick(engine));          //  taking it clears it
    S_COUNTERS(.rejected_malformed = 16, .peers_kicked = 1);
    const s_status_t *status = s_status_fetch(engine, S_T0 + 17);  //  others never notice
    assert_int_equal(s_status_count(status, "services"), 0);
    assert_false(zm_engine_take_kick(engine));
}

static void
test_engine_garbage_window_starts_again(void **state)
{
    zm_engine_t *engine = *state;
    for (uint32_t i = 0; i < 15; i++)
        s_garbage(engine, "C1", S_T0 + i);
    //  Ten seconds on, the count starts again: 15 more are still not a kick.
    for (uint32_t i = 0; i < 15; i++) {
        s_garbage(engine, "C1", S_T0 + 10000 + i);
        assert_false(zm_engine_take_kick(engine));
    }
    zm_engine_on_tick(engine, S_T0 + 20100);            //  the entry is forgotten
    assert_int_equal(zhashx_size(engine->garbage), 0);
    S_COUNTERS(.rejected_malformed = 30);
}

static void
test_engine_garbage_counts_per_peer(void **state)
{
    zm_engine_t *engine = *state;
    for (uint32_t i = 0; i < 15; i++) {
        s_garbage(engine, "C1", S_T0 + i);
        s_garbage(engine, "C2", S_T0 + i);
    }
    assert_false(zm_engine_take_kick(engine));
    s_garbage(engine, "C2", S_T0 + 20);
    assert_true(zm_engine_take_kick(engine));
    S_COUNTERS(.rejected_malformed = 31, .peers_kicked = 1);
}

static void
test_engine_max_garbage_zero_never_kicks(void **state)
{
    zm_engine_t *engine = *state;
    engine->config.max_garbage = 0;
    for (uint32_t i = 0; i < 50; i++) {
        s_garbage(engine, "C1", S_T0 + i);
        assert_false(zm_engine_take_kick(engine));
    }
    S_COUNTERS(.rejected_malformed = 50);
}


int
main(void)
{
    zsys_set_logstream(NULL);                   //  the engine's logs are not under test
#define S_TEST(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)
    const struct CMUnitTest tests[] = {
        S_TEST(test_engine_dispatches_call_to_ready_worker),
        S_TEST(test_engine_request_carries_time_left),
        S_TEST(test_engine_forwards_handler_error),
        S_TEST(test_engine_matches_out_of_order_replies),
        S_TEST(test_engine_lru_rotates_over_workers),
        S_TEST(test_engine_worker_slots_fill_before_queueing),
        S_TEST(test_engine_lru_moves_worker_with_slots_left_to_back),
        S_TEST(test_engine_queued_calls_dispatch_in_order),
        S_TEST(test_engine_rejects_call_over_queue_bound),
        S_TEST(test_engine_no_worker_answers_404_after_grace),
        S_TEST(test_engine_worker_within_grace_gets_queued_call),
        S_TEST(test_engine_grace_restarts_when_last_worker_leaves),
        S_TEST(test_engine_deadline_before_grace_wins),
        S_TEST(test_engine_queued_call_expires_at_deadline),
        S_TEST(test_engine_held_call_expires_at_deadline),
        S_TEST(test_engine_lost_worker_skips_answered_call),
        S_TEST(test_engine_never_dispatches_expired_call),
        S_TEST(test_engine_heartbeats_idle_worker),
        S_TEST(test_engine_request_postpones_heartbeat),
        S_TEST(test_engine_worker_traffic_postpones_expiry),
        S_TEST(test_engine_expired_worker_loses_inflight_calls),
        S_TEST(test_engine_worker_disconnect_loses_inflight_calls),
        S_TEST(test_engine_kicks_worker_sending_call),
        S_TEST(test_engine_kicks_worker_sending_second_ready),
        S_TEST(test_engine_kicks_worker_sending_request),
        S_TEST(test_engine_kicks_worker_replying_404),
        S_TEST(test_engine_kicks_worker_sending_malformed_header),
        S_TEST(test_engine_kicks_worker_with_bad_version),
        S_TEST(test_engine_kicks_worker_sending_oversized_reply),
        S_TEST(test_engine_drops_reply_for_unknown_ticket),
        S_TEST(test_engine_drops_reply_for_other_workers_ticket),
        S_TEST(test_engine_drops_reply_for_ticket_zero),
        S_TEST(test_engine_disconnects_unregistered_heartbeat),
        S_TEST(test_engine_disconnects_unregistered_reply),
        S_TEST(test_engine_ignores_unregistered_disconnect),
        S_TEST(test_engine_rejects_request_from_client),
        S_TEST(test_engine_rejects_header_that_is_not_an_array),
        S_TEST(test_engine_rejects_missing_delimiter),
        S_TEST(test_engine_rejects_bad_field_with_request_id),
        S_TEST(test_engine_rejects_bad_version),
        S_TEST(test_engine_rejects_oversized_body),
        S_TEST(test_engine_rejects_oversized_header),
        S_TEST(test_engine_disconnects_malformed_ready),
        S_TEST(test_engine_disconnects_reserved_ready),
        S_TEST(test_engine_disconnects_ready_with_bad_version),
        S_TEST(test_engine_disconnects_oversized_ready),
        S_TEST(test_engine_status_reports_services_workers_counters),
        S_TEST(test_engine_other_reserved_name_gets_404_at_once),
        S_TEST(test_engine_send_failure_retires_worker),
        S_TEST(test_engine_kicks_peer_after_max_garbage),
        S_TEST(test_engine_garbage_window_starts_again),
        S_TEST(test_engine_garbage_counts_per_peer),
        S_TEST(test_engine_max_garbage_zero_never_kicks),
        S_TEST(test_engine_send_failure_to_unknown_peer_is_counted),
        S_TEST(test_engine_forgets_idle_services),
        cmocka_unit_test_setup_teardown(test_engine_max_services_rejects_new_names,
                                        s_setup_two_services, s_teardown),
    };
#undef S_TEST
    return cmocka_run_group_tests_name("engine", tests, NULL, NULL);
}
