//  wire - raw ZMP/1 messages for the bad-input tests (see wire.h). Headers
//  are packed with the public zmesh_pack builder, answers decoded with
//  msgpack-c; nothing here goes through the client library, so the bytes on
//  the wire are exactly the ones a test chose.
#include "wire.h"

#include <msgpack.h>

#define S_TIMEOUT_MS 5000

void
zm_wire_add(zmsg_t *msg, const void *data, size_t size)
{
    assert(msg);
    zframe_t *frame = zframe_new(data, size);
    zmsg_append(msg, &frame);
}

void
zm_wire_add_pack(zmsg_t *msg, zmesh_pack_t **pack_p)
{
    assert(msg);
    assert(pack_p && *pack_p);
    zm_wire_add(msg, zmesh_pack_data(*pack_p), zmesh_pack_size(*pack_p));
    zmesh_pack_destroy(pack_p);
}

zmesh_pack_t *
zm_wire_header(const char *signature, const char *command, uint64_t id, const char *service,
               int extra)
{
    zmesh_pack_t *pack = zmesh_pack_new();
    zmesh_pack_array(pack, (uint32_t) (5 + extra));
    zmesh_pack_str(pack, signature);
    zmesh_pack_str(pack, command);
    zmesh_pack_uint(pack, id);
    zmesh_pack_str(pack, service);
    zmesh_pack_uint(pack, S_TIMEOUT_MS);
    for (int i = 0; i < extra; i++)
        zmesh_pack_str(pack, "extra");
    return pack;
}

zmsg_t *
zm_wire_call(uint64_t id, const void *body, size_t size)
{
    zmsg_t *msg = zmsg_new();
    zm_wire_add(msg, "", 0);
    zmesh_pack_t *header = zm_wire_header("ZMP1", "CALL", id, "echo", 0);
    zm_wire_add_pack(msg, &header);
    zm_wire_add(msg, body, size);
    return msg;
}

zmsg_t *
zm_wire_call_bin(uint64_t id, size_t total)
{
    assert(total > 5 && total - 5 <= UINT32_MAX);
    uint8_t *body = malloc(total);
    assert(body);
    uint32_t length = (uint32_t) (total - 5);
    uint8_t head[5] = {0xc6, (uint8_t) (length >> 24), (uint8_t) (length >> 16),
                       (uint8_t) (length >> 8), (uint8_t) length};
    memcpy(body, head, 5);
    for (size_t i = 5; i < total; i++)
        body[i] = (uint8_t) i;
    zmsg_t *msg = zm_wire_call(id, body, total);
    free(body);
    return msg;
}

static bool
s_str_is(const msgpack_object *object, const char *text)
{
    return object->type == MSGPACK_OBJECT_STR && object->via.str.size == strlen(text)
           && memcmp(object->via.str.ptr, text, object->via.str.size) == 0;
}

static void
s_copy_str(const msgpack_object *object, char *buffer, size_t size)
{
    if (object->type == MSGPACK_OBJECT_STR)
        snprintf(buffer, size, "%.*s", (int) object->via.str.size, object->via.str.ptr);
}

//  Decodes ["ZMP1", "REPLY", id, status], ["ZMP1", "DISCONNECT", status,
//  reason] or ["ZMP1", "REQUEST", ticket, service, timeout, attempt?].
static bool
s_decode_header(const void *data, size_t size, zm_wire_answer_t *answer)
{
    msgpack_unpacked result;
    msgpack_unpacked_init(&result);
    size_t offset = 0;
    const msgpack_object *root = &result.data;
    bool ok = msgpack_unpack_next(&result, data, size, &offset) == MSGPACK_UNPACK_SUCCESS
              && offset == size && root->type == MSGPACK_OBJECT_ARRAY
              && root->via.array.size >= 4 && s_str_is(&root->via.array.ptr[0], "ZMP1");
    const msgpack_object *fields = ok ? root->via.array.ptr : NULL;
    if (ok && (root->via.array.size == 5 || root->via.array.size == 6)
        && s_str_is(&fields[1], "REQUEST")) {
        ok = fields[2].type == MSGPACK_OBJECT_POSITIVE_INTEGER;
        snprintf(answer->command, sizeof answer->command, "REQUEST");
        answer->id = fields[2].via.u64;
    }
    else if (ok && root->via.array.size != 4)
        ok = false;
    else if (ok && s_str_is(&fields[1], "REPLY")) {
        ok = fields[2].type == MSGPACK_OBJECT_POSITIVE_INTEGER
             && fields[3].type == MSGPACK_OBJECT_POSITIVE_INTEGER;
        snprintf(answer->command, sizeof answer->command, "REPLY");
        answer->id = fields[2].via.u64;
        answer->status = fields[3].via.u64;
    }
    else if (ok && s_str_is(&fields[1], "DISCONNECT")) {
        ok = fields[2].type == MSGPACK_OBJECT_POSITIVE_INTEGER;
        snprintf(answer->command, sizeof answer->command, "DISCONNECT");
        answer->status = fields[2].via.u64;
        s_copy_str(&fields[3], answer->reason, sizeof answer->reason);
    }
    else
        ok = false;
    msgpack_unpacked_destroy(&result);
    return ok;
}

//  Keeps the body of a REPLY and, if it is a msgpack str, its text.
static void
s_take_body(zmsg_t *msg, zm_wire_answer_t *answer)
{
    answer->body = zmsg_next(msg);
    zmsg_remove(msg, answer->body);
    msgpack_unpacked result;
    msgpack_unpacked_init(&result);
    size_t offset = 0;
    if (msgpack_unpack_next(&result, (const char *) zframe_data(answer->body),
                            zframe_size(answer->body), &offset) == MSGPACK_UNPACK_SUCCESS)
        s_copy_str(&result.data, answer->reason, sizeof answer->reason);
    msgpack_unpacked_destroy(&result);
}

//  True if msg is ["", ["ZMP1", "HEARTBEAT"]].
static bool
s_is_heartbeat(zmsg_t *msg)
{
    static const uint8_t heartbeat[] = "\x92\xa4ZMP1\xa9HEARTBEAT";
    zframe_t *header = zmsg_size(msg) == 2 ? zmsg_last(msg) : NULL;
    return header && zframe_size(header) == sizeof heartbeat - 1
           && memcmp(zframe_data(header), heartbeat, sizeof heartbeat - 1) == 0;
}

//  The next message on sock that is not a HEARTBEAT, or NULL at the deadline.
static zmsg_t *
s_recv_skipping_heartbeats(zsock_t *sock, int timeout_ms)
{
    int64_t deadline = zclock_mono() + timeout_ms;
    zpoller_t *poller = zpoller_new(sock, NULL);
    zmsg_t *msg = NULL;
    while (!msg) {
        int64_t left = deadline - zclock_mono();
        if (left < 0 || zpoller_wait(poller, (int) left) != sock)
            break;
        msg = zmsg_recv(sock);
        if (msg && s_is_heartbeat(msg))
            zmsg_destroy(&msg);
    }
    zpoller_destroy(&poller);
    return msg;
}

bool
zm_wire_recv(zsock_t *sock, zm_wire_answer_t *answer, int timeout_ms)
{
    assert(sock);
    assert(answer);
    memset(answer, 0, sizeof *answer);
    zmsg_t *msg = s_recv_skipping_heartbeats(sock, timeout_ms);
    if (!msg)
        return false;
    answer->frames = zmsg_size(msg);
    zframe_t *delimiter = zmsg_first(msg);
    zframe_t *header = zmsg_next(msg);
    bool ok = delimiter && zframe_size(delimiter) == 0 && header
              && s_decode_header(zframe_data(header), zframe_size(header), answer);
    if (ok && strcmp(answer->command, "DISCONNECT") != 0 && answer->frames == 3)
        s_take_body(msg, answer);
    zmsg_destroy(&msg);
    return ok;
}

static void
s_sock_destroy(void **sock_p)
{
    zsock_destroy((zsock_t **) sock_p);
}

zsock_t *
zm_wire_dealer(zm_harness_t *harness, const char *endpoint)
{
    assert(harness);
    assert(endpoint);
    zsock_t *sock = zsock_new(ZMQ_DEALER);
    if (!sock)
        return NULL;
    zsock_set_linger(sock, 0);
    zm_harness_adopt(harness, sock, s_sock_destroy);
    return zsock_connect(sock, "%s", endpoint) == 0 ? sock : NULL;
}

bool
zm_wire_start(zm_harness_t *harness, char *endpoint, size_t size)
{
    char max_body[32];
    snprintf(max_body, sizeof max_body, "%d", ZM_WIRE_MAX_BODY);
    //  These tests send many malformed messages from one peer on purpose:
    //  kicking garbage peers is tested on its own (test_hostile_kick).
    const char *flags[] = {"--max-body", max_body, "--max-garbage", "0", NULL};
    return zm_harness_broker(harness, "tcp://127.0.0.1:*", flags, endpoint, size)
           && zm_harness_worker(harness, endpoint, "echo", "echo", NULL)
           && zm_harness_wait_workers(endpoint, "echo", 1, 10000);
}

bool
zm_wire_echo_ok(zmesh_client_t *client)
{
    assert(client);
    static const char request[] = "\x92\x01\xa2ok";    //  [1, "ok"]
    size_t size = sizeof request - 1;
    zmesh_msg_t *reply = NULL;
    int rc = zmesh_client_call(client, "echo", request, size, S_TIMEOUT_MS, &reply);
    bool ok = rc == ZMESH_OK && zmesh_msg_size(reply) == size
              && memcmp(zmesh_msg_data(reply), request, size) == 0;
    if (!ok)
        fprintf(stderr, "wire: good echo call failed: %s (%s)\n", zmesh_strerror(rc),
                zmesh_client_error(client));
    zmesh_msg_destroy(&reply);
    return ok;
}
