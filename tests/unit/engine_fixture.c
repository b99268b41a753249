//  engine_fixture.c - the engine tests' shared fixture, inputs and
//  expectations (engine_fixture.h). It drives zm_engine_t only through its
//  API and decodes what the engine sends with the engine's own codec, so a
//  message the codec would refuse fails the test; it never touches a socket
//  or a clock.
#include "engine_fixture.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  The last message popped and the last status read live here, not on a
//  test's stack: a failed assertion longjmps out of the helper, and the next
//  pop or the teardown frees them, so failing tests leak nothing either.
static zt_out_t s_out;
static zt_status_t s_status;

//  A body of one positive fixint, 0 to 9: small distinct payloads.
zt_bytes_t
zt_fixint(int value)
{
    static const char fixints[] = "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09";
    assert_true(value >= 0 && value <= 9);
    return (zt_bytes_t){fixints + value, 1};
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


static const char *s_user_id;       //  borrowed: the sender key given with each feed
//  ---------------------------------------------------------------------------
//  Fixtures

int
zt_setup_with(void **state, size_t max_services)
{
    zm_engine_config_t config;
    zm_engine_config_defaults(&config);
    config.grace_ms = ZT_GRACE_MS;
    config.max_queue = ZT_MAX_QUEUE;
    config.limits.max_body = ZT_MAX_BODY;
    if (max_services)
        config.max_services = max_services;
    *state = zm_engine_new(&config, ZT_T0);
    return 0;
}

int
zt_setup(void **state)
{
    return zt_setup_with(state, 0);
}

int
zt_setup_two_services(void **state)
{
    return zt_setup_with(state, 2);
}

static void
s_status_free(void)
{
    msgpack_unpacked_destroy(&s_status.unpacked);   //  safe when zeroed or destroyed
    zframe_destroy(&s_status.body);
    s_status.root = NULL;
}

int
zt_teardown(void **state)
{
    zm_proto_reset(&s_out.command);
    s_status_free();
    s_user_id = NULL;
    zm_engine_t *engine = *state;
    zm_engine_destroy(&engine);
    assert_null(engine);
    return 0;
}

//  ---------------------------------------------------------------------------
//  Input: messages as the ROUTER gives them

void
zt_set_user_id(const char *user_id)
{
    s_user_id = user_id;
}

//  Feeds a command from peer; the engine must take the message.
void
zt_feed(zm_engine_t *engine, const char *peer, zm_proto_t *command, int64_t now)
{
    zmsg_t *msg = zm_proto_encode(command);
    zframe_t *routing = zframe_new(peer, strlen(peer));
    zmsg_prepend(msg, &routing);
    zm_engine_on_message(engine, &msg, s_user_id, now);
    assert_null(msg);
}

//  Feeds raw frames from peer, after its routing frame: for malformed input.
void
zt_feed_raw(zm_engine_t *engine, const char *peer, const zt_bytes_t *frames, size_t count,
            int64_t now)
{
    zmsg_t *msg = zmsg_new();
    zframe_t *routing = zframe_new(peer, strlen(peer));
    zmsg_append(msg, &routing);
    for (size_t i = 0; i < count; i++) {
        zframe_t *frame = zframe_new(frames[i].data, frames[i].size);
        zmsg_append(msg, &frame);
    }
    zm_engine_on_message(engine, &msg, s_user_id, now);
    assert_null(msg);
}

void
zt_call(zm_engine_t *engine, const char *client, uint64_t request_id, const char *service,
        uint32_t timeout_ms, zt_bytes_t body, int64_t now)
{
    zt_call_flags(engine, client, request_id, service, timeout_ms, 0, body, now);
}

//  A CALL with flags (ZM_CALL_PROGRESS): a 6-field header, timeout included.
void
zt_call_flags(zm_engine_t *engine, const char *client, uint64_t request_id, const char *service,
              uint32_t timeout_ms, uint32_t flags, zt_bytes_t body, int64_t now)
{
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = ZM_CMD_CALL;
    command.id = request_id;
    snprintf(command.service, sizeof command.service, "%s", service);
    command.timeout_ms = timeout_ms;
    command.flags = flags;
    command.body = zframe_new(body.data, body.size);
    zt_feed(engine, client, &command, now);
}

void
zt_ready(zm_engine_t *engine, const char *worker, const char *service, uint32_t slots,
         int64_t now)
{
    zt_ready_flags(engine, worker, service, slots, 0, now);
}

//  A READY with flags (ZM_READY_IDEMPOTENT): a 7-field header.
void
zt_ready_flags(zm_engine_t *engine, const char *worker, const char *service, uint32_t slots,
               uint32_t flags, int64_t now)
{
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = ZM_CMD_READY;
    snprintf(command.service, sizeof command.service, "%s", service);
    command.slots = slots;
    command.heartbeat_ms = ZT_HEARTBEAT_MS;
    command.liveness = ZT_LIVENESS;
    command.flags = flags;
    zt_feed(engine, worker, &command, now);
}

//  A REPLY as a worker sends it: ticket and status.
void
zt_answer(zm_engine_t *engine, const char *worker, uint64_t ticket, uint32_t status,
          zt_bytes_t body, int64_t now)
{
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = ZM_CMD_REPLY;
    command.id = ticket;
    command.status = status;
    command.body = zframe_new(body.data, body.size);
    zt_feed(engine, worker, &command, now);
}

//  A PROGRESS as a worker sends it: the ticket it holds and the time it needs.
void
zt_progress(zm_engine_t *engine, const char *peer, uint64_t ticket, uint32_t extend_ms,
            int64_t now)
{
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = ZM_CMD_PROGRESS;
    command.id = ticket;
    command.extend_ms = extend_ms;
    zt_feed(engine, peer, &command, now);
}

void
zt_heartbeat(zm_engine_t *engine, const char *peer, int64_t now)
{
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = ZM_CMD_HEARTBEAT;
    zt_feed(engine, peer, &command, now);
}

//  A worker leaving on its own: DISCONNECT 200.
void
zt_leave(zm_engine_t *engine, const char *peer, int64_t now)
{
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = ZM_CMD_DISCONNECT;
    command.status = ZM_STATUS_OK;
    snprintf(command.reason, sizeof command.reason, "bye");
    zt_feed(engine, peer, &command, now);
}

void
zt_send_failed(zm_engine_t *engine, const char *peer, bool full, int64_t now)
{
    zframe_t *routing = zframe_new(peer, strlen(peer));
    zm_engine_on_send_failed(engine, routing, full, now);
    zframe_destroy(&routing);
}

//  ---------------------------------------------------------------------------
//  Output: the outbox, message by message

//  Pops and decodes the next outbox message; fails if there is none or if
//  the engine produced bytes its own codec refuses.
zt_out_t *
zt_pop(zm_engine_t *engine)
{
    zt_out_t *out = &s_out;
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

void
zt_assert_peer(const zt_out_t *out, const char *peer)
{
    char expected[ZT_HEX_MAX];
    s_hex(expected, peer, strlen(peer));
    if (strcmp(out->peer, expected) != 0)
        fail_msg("%s sent to %s, expected to %s (%s)", zm_proto_cmd_name(out->command.cmd),
                 out->peer, expected, peer);
}

void
zt_assert_cmd(const zt_out_t *out, zm_cmd_t cmd)
{
    if (out->command.cmd != cmd)
        fail_msg("got %s, expected %s", zm_proto_cmd_name(out->command.cmd),
                 zm_proto_cmd_name(cmd));
}

void
zt_assert_body(zframe_t *body, zt_bytes_t expected)
{
    assert_non_null(body);
    assert_int_equal(zframe_size(body), expected.size);
    assert_memory_equal(zframe_data(body), expected.data, expected.size);
}

//  Asserts body is a msgpack str (an error reason) containing part, if given.
void
zt_assert_reason(zframe_t *body, const char *part)
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
uint64_t
zt_expect_request(zm_engine_t *engine, const char *worker, const char *service,
                  uint32_t timeout_ms, zt_bytes_t body)
{
    const zt_out_t *out = zt_pop(engine);
    zt_assert_cmd(out, ZM_CMD_REQUEST);
    zt_assert_peer(out, worker);
    assert_string_equal(out->command.service, service);
    assert_int_equal(out->command.timeout_ms, timeout_ms);
    zt_assert_body(out->command.body, body);
    assert_true(out->command.id != 0);
    return out->command.id;
}

//  Expects a REQUEST to worker that is dispatch number attempt of its call;
//  returns its ticket.
uint64_t
zt_expect_request_attempt(zm_engine_t *engine, const char *worker, const char *service,
                          uint32_t timeout_ms, zt_bytes_t body, uint32_t attempt)
{
    uint64_t ticket = zt_expect_request(engine, worker, service, timeout_ms, body);
    if (s_out.command.attempt != attempt)
        fail_msg("REQUEST ticket %" PRIu64 " carries attempt %u, expected %u", ticket,
                 s_out.command.attempt, attempt);
    return ticket;
}

//  Expects a REPLY to client carrying exactly body.
void
zt_expect_reply(zm_engine_t *engine, const char *client, uint64_t request_id, uint32_t status,
                zt_bytes_t body)
{
    const zt_out_t *out = zt_pop(engine);
    zt_assert_cmd(out, ZM_CMD_REPLY);
    zt_assert_peer(out, client);
    assert_int_equal(out->command.id, request_id);
    assert_int_equal(out->command.status, status);
    zt_assert_body(out->command.body, body);
}

//  Expects an error REPLY to client: status and a str reason mentioning part.
void
zt_expect_error(zm_engine_t *engine, const char *client, uint64_t request_id, uint32_t status,
                const char *part)
{
    const zt_out_t *out = zt_pop(engine);
    zt_assert_cmd(out, ZM_CMD_REPLY);
    zt_assert_peer(out, client);
    assert_int_equal(out->command.id, request_id);
    assert_int_equal(out->command.status, status);
    zt_assert_reason(out->command.body, part);
}

//  Expects count error REPLYs to client, one per id, in any order: services
//  are visited in hash order, so answers across services come in no set order.
void
zt_expect_errors_any_order(zm_engine_t *engine, const char *client, uint32_t status,
                           const uint64_t *ids, size_t count)
{
    bool seen[64] = {false};
    assert_true(count <= 64);
    for (size_t n = 0; n < count; n++) {
        const zt_out_t *out = zt_pop(engine);
        zt_assert_cmd(out, ZM_CMD_REPLY);
        zt_assert_peer(out, client);
        assert_int_equal(out->command.status, status);
        zt_assert_reason(out->command.body, NULL);
        size_t i = 0;
        while (i < count && (ids[i] != out->command.id || seen[i]))
            i++;
        if (i == count)
            fail_msg("unexpected or repeated REPLY for request id %" PRIu64, out->command.id);
        seen[i] = true;
    }
}

//  Expects a PROGRESS to client: the call's request id and the time the
//  handler asked for.
void
zt_expect_progress(zm_engine_t *engine, const char *client, uint64_t request_id,
                   uint32_t extend_ms)
{
    const zt_out_t *out = zt_pop(engine);
    zt_assert_cmd(out, ZM_CMD_PROGRESS);
    zt_assert_peer(out, client);
    assert_int_equal(out->command.id, request_id);
    assert_int_equal(out->command.extend_ms, extend_ms);
    assert_null(out->command.body);
}

void
zt_expect_disconnect(zm_engine_t *engine, const char *peer, uint32_t status, const char *part)
{
    const zt_out_t *out = zt_pop(engine);
    zt_assert_cmd(out, ZM_CMD_DISCONNECT);
    zt_assert_peer(out, peer);
    assert_int_equal(out->command.status, status);
    if (part && !strstr(out->command.reason, part))
        fail_msg("DISCONNECT reason \"%s\" does not mention \"%s\"", out->command.reason, part);
}

void
zt_expect_heartbeat(zm_engine_t *engine, const char *peer)
{
    const zt_out_t *out = zt_pop(engine);
    zt_assert_cmd(out, ZM_CMD_HEARTBEAT);
    zt_assert_peer(out, peer);
}

void
zt_expect_empty(zm_engine_t *engine)
{
    if (zlistx_size(engine->outbox) == 0)
        return;
    const zt_out_t *out = zt_pop(engine);
    fail_msg("the outbox should be empty, holds %s to %s", zm_proto_cmd_name(out->command.cmd),
             out->peer);
}

//  Compares every counter, so an unexpected one moving fails too.
void
zt_assert_counters(const zm_engine_t *engine, const zm_counters_t *expected)
{
#define S_CHECK(name)                                                                              \
    if (engine->counters.name != expected->name)                                                   \
        fail_msg("counter " #name " is %" PRIu64 ", expected %" PRIu64, engine->counters.name,     \
                 expected->name);
    ZM_COUNTERS(S_CHECK)
#undef S_CHECK
}

//  ---------------------------------------------------------------------------
//  zmesh.status, read back with msgpack-c

//  Calls zmesh.status as client "S" and unpacks the 200 reply into s_status.
const zt_status_t *
zt_status_fetch(zm_engine_t *engine, int64_t now)
{
    s_status_free();
    zt_call(engine, "S", 77, "zmesh.status", 0, ZT_BYTES("\xc0"), now);
    zt_out_t *out = zt_pop(engine);
    zt_assert_cmd(out, ZM_CMD_REPLY);
    zt_assert_peer(out, "S");
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

bool
zt_str_is(const msgpack_object *object, const char *text)
{
    return object->type == MSGPACK_OBJECT_STR && object->via.str.size == strlen(text)
        && memcmp(object->via.str.ptr, text, strlen(text)) == 0;
}

const msgpack_object *
zt_map_get(const msgpack_object *map, const char *key)
{
    assert_int_equal(map->type, MSGPACK_OBJECT_MAP);
    for (uint32_t i = 0; i < map->via.map.size; i++)
        if (zt_str_is(&map->via.map.ptr[i].key, key))
            return &map->via.map.ptr[i].val;
    fail_msg("status map has no key \"%s\"", key);
    return NULL;
}

uint64_t
zt_map_uint(const msgpack_object *map, const char *key)
{
    const msgpack_object *value = zt_map_get(map, key);
    assert_int_equal(value->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    return value->via.u64;
}

//  The entry of the array under key whose field is text, or NULL.
const msgpack_object *
zt_status_entry(const zt_status_t *status, const char *key, const char *field, const char *text)
{
    const msgpack_object *array = zt_map_get(status->root, key);
    assert_int_equal(array->type, MSGPACK_OBJECT_ARRAY);
    for (uint32_t i = 0; i < array->via.array.size; i++)
        if (zt_str_is(zt_map_get(&array->via.array.ptr[i], field), text))
            return &array->via.array.ptr[i];
    return NULL;
}

uint32_t
zt_status_count(const zt_status_t *status, const char *key)
{
    const msgpack_object *array = zt_map_get(status->root, key);
    assert_int_equal(array->type, MSGPACK_OBJECT_ARRAY);
    return array->via.array.size;
}

//  Asserts one service entry: workers, slots, inflight, queued, calls.
void
zt_assert_service(const zt_status_t *status, const char *name, uint64_t workers, uint64_t slots,
                  uint64_t inflight, uint64_t queued, uint64_t calls)
{
    const msgpack_object *entry = zt_status_entry(status, "services", "name", name);
    if (!entry)
        fail_msg("status lists no service \"%s\"", name);
    assert_int_equal(zt_map_uint(entry, "workers"), workers);
    assert_int_equal(zt_map_uint(entry, "slots"), slots);
    assert_int_equal(zt_map_uint(entry, "inflight"), inflight);
    assert_int_equal(zt_map_uint(entry, "queued"), queued);
    assert_int_equal(zt_map_uint(entry, "calls"), calls);
}


//  W1 and W2 serve echo; C1's call 1 is at W1, C2's call 2 at W2. Returns
//  the tickets.
void
zt_two_busy_workers(zm_engine_t *engine, uint64_t *t1_p, uint64_t *t2_p)
{
    zt_ready(engine, "W1", "echo", 1, ZT_T0);
    zt_ready(engine, "W2", "echo", 1, ZT_T0);
    zt_call(engine, "C1", 1, "echo", 0, zt_fixint(1), ZT_T0 + 1);
    *t1_p = zt_expect_request(engine, "W1", "echo", 0, zt_fixint(1));
    zt_call(engine, "C2", 2, "echo", 0, zt_fixint(2), ZT_T0 + 2);
    *t2_p = zt_expect_request(engine, "W2", "echo", 0, zt_fixint(2));
    zt_expect_empty(engine);
}
