//  fuzz_proto - fuzzes the ZMP/1 decoder, zm_proto_decode, with the limits
//  of each kind of peer: the broker (bodies checked as MessagePack, 64 KiB,
//  depth 64), a client or worker (bodies unchecked), the library default
//  (limits NULL) and a tight variant (16-byte bodies, depth 2). The input is
//  up to 8 frames, each a 2-byte big-endian length and that many bytes (a
//  length past the end takes what is left), so frames can be empty, missing
//  or longer than a header may be. A decoded command must keep ZMP.md's
//  ranges (sections 5 and 16.2), own the body it took out of the message,
//  and come back unchanged through zm_proto_encode and a second decode; a
//  refused one leaves the message alone and gives a wire status with a
//  reason, and a PUSH refused after its seq still names a valid pipeline.
//  The replication commands (section 20) keep their ranges too, and a
//  SNAPSHOT chunk is held to its own bound whatever the limits.
//  The variants must agree with each other: looser limits never refuse
//  what tighter accept.
#include "fuzz_common.h"
#include "zm_pack.h"
#include "zm_proto.h"
#include "zmesh.h"

#include <string.h>

#define S_FRAMES_MAX 8

//  What one decode gave, to compare the variants.
typedef struct {
    bool ok;                //  decoded
    zm_cmd_t cmd;           //  the command, or 0 if its name was not read
    zm_status_t status;     //  on failure
    const char *reason;     //  on failure: static text
} s_outcome_t;

static const zm_proto_limits_t s_broker = {.max_body = 65536, .check_body = true, .max_depth = 64};
static const zm_proto_limits_t s_peer = {.max_body = 0, .check_body = false, .max_depth = 0};
static const zm_proto_limits_t s_tight = {.max_body = 16, .check_body = true, .max_depth = 2};

static zmsg_t *
s_message(const uint8_t *data, size_t size)
{
    zm_fuzz_cursor_t input;
    zm_fuzz_cursor_init(&input, data, size);
    zmsg_t *msg = zmsg_new();
    while (zm_fuzz_left(&input) > 0 && zmsg_size(msg) < S_FRAMES_MAX) {
        zframe_t *frame = zm_fuzz_frame(&input, zm_fuzz_u16(&input));
        zmsg_append(msg, &frame);
    }
    return msg;
}

static bool
s_frame_equal(zframe_t *a, zframe_t *b)
{
    if (!a || !b)
        return a == b;
    return zframe_size(a) == zframe_size(b)
           && (zframe_size(a) == 0 || memcmp(zframe_data(a), zframe_data(b), zframe_size(a)) == 0);
}

static bool
s_msg_equal(zmsg_t *a, zmsg_t *b)
{
    if (zmsg_size(a) != zmsg_size(b))
        return false;
    for (zframe_t *x = zmsg_first(a), *y = zmsg_first(b); x; x = zmsg_next(a), y = zmsg_next(b))
        if (!s_frame_equal(x, y))
            return false;
    return true;
}

static bool
s_has_body(zm_cmd_t cmd)
{
    return cmd == ZM_CMD_CALL || cmd == ZM_CMD_REQUEST || cmd == ZM_CMD_REPLY
           || cmd == ZM_CMD_PUSH || cmd == ZM_CMD_REFUSE || cmd == ZM_CMD_DELIVER
           || cmd == ZM_CMD_PART || cmd == ZM_CMD_WRITE || cmd == ZM_CMD_APPLIED
           || cmd == ZM_CMD_SNAPSHOT;
}

static bool
s_valid_cmd(zm_cmd_t cmd)
{
    return cmd >= ZM_CMD_CALL && cmd <= ZM_CMD_SNAPSHOT;
}

//  Commands whose header carries a request id, ticket, seq, message id,
//  write id or token (APPLIED has a body but names its write by seq).
static bool
s_has_id(zm_cmd_t cmd)
{
    return (s_has_body(cmd) && cmd != ZM_CMD_APPLIED) || cmd == ZM_CMD_PROGRESS
           || cmd == ZM_CMD_ACCEPT || cmd == ZM_CMD_DONE || cmd == ZM_CMD_ACK
           || cmd == ZM_CMD_RESUME || cmd == ZM_CMD_RELEASE || cmd == ZM_CMD_CREDIT
           || cmd == ZM_CMD_CANCEL || cmd == ZM_CMD_SYNC;
}

//  Commands with a service or pipeline name.
static bool
s_has_name(zm_cmd_t cmd)
{
    return cmd == ZM_CMD_CALL || cmd == ZM_CMD_REQUEST || cmd == ZM_CMD_READY
           || (cmd >= ZM_CMD_PUSH && cmd <= ZM_CMD_DELIVER) || cmd == ZM_CMD_JOIN;
}

//  The replication commands' own fields (ZMP.md section 20).
static void
s_check_repl_fields(const zm_proto_t *command)
{
    zm_cmd_t cmd = command->cmd;
    if (cmd == ZM_CMD_JOIN) {
        ZM_FUZZ_CHECK(command->replicas >= 1 && command->replicas <= ZM_REPLICAS_MAX);
        ZM_FUZZ_CHECK(command->quorum <= command->replicas);
    }
    else
        ZM_FUZZ_CHECK(command->replicas == 0 && command->quorum == 0);
    if (cmd != ZM_CMD_JOIN && cmd != ZM_CMD_WRITE && cmd != ZM_CMD_APPLIED
        && cmd != ZM_CMD_MISSING && cmd != ZM_CMD_SNAPSHOT)
        ZM_FUZZ_CHECK(command->epoch == 0);
    //  A write's seq starts at 1; JOIN, MISSING and SNAPSHOT name the last one
    //  applied (0: none).
    if (cmd == ZM_CMD_PART || cmd == ZM_CMD_WRITE || cmd == ZM_CMD_APPLIED)
        ZM_FUZZ_CHECK(command->seq >= 1);
    else if (cmd != ZM_CMD_JOIN && cmd != ZM_CMD_MISSING && cmd != ZM_CMD_SNAPSHOT)
        ZM_FUZZ_CHECK(command->seq == 0);
    //  JOIN's replica id is its optional tenth field.
    if (cmd == ZM_CMD_JOIN && command->fields == 9)
        ZM_FUZZ_CHECK(command->id == 0);
    ZM_FUZZ_CHECK(command->kind <= (cmd == ZM_CMD_WRITE ? ZM_WRITE_KIND_QUORUM_READ : 0u));
    if (cmd != ZM_CMD_SNAPSHOT)
        ZM_FUZZ_CHECK(command->index == 0 && !command->more);
    if (cmd == ZM_CMD_SYNC || cmd == ZM_CMD_SNAPSHOT)
        ZM_FUZZ_CHECK(command->id >= 1);
}

//  READY's, CONSUME's and JOIN's session fields.
static void
s_check_session(const zm_proto_t *command)
{
    bool session = command->cmd == ZM_CMD_READY || command->cmd == ZM_CMD_CONSUME
                   || command->cmd == ZM_CMD_JOIN;
    if (session) {
        ZM_FUZZ_CHECK(command->heartbeat_ms >= ZM_HEARTBEAT_MIN);
        ZM_FUZZ_CHECK(command->heartbeat_ms <= ZM_HEARTBEAT_MAX);
        ZM_FUZZ_CHECK(command->liveness >= ZM_LIVENESS_MIN);
        ZM_FUZZ_CHECK(command->liveness <= ZM_LIVENESS_MAX);
    }
    else
        ZM_FUZZ_CHECK(command->heartbeat_ms == 0 && command->liveness == 0);
    if (command->cmd == ZM_CMD_READY)
        ZM_FUZZ_CHECK(command->slots >= 1 && command->slots <= ZM_SLOTS_MAX);
    else
        ZM_FUZZ_CHECK(command->slots == 0);
    if (command->cmd == ZM_CMD_CONSUME)
        ZM_FUZZ_CHECK(command->credit >= 1 && command->credit <= ZM_CREDIT_MAX);
    else
        ZM_FUZZ_CHECK(command->credit == 0);
}

//  The pipeline commands' own fields (ZMP.md section 16.2).
static void
s_check_pipe_fields(const zm_proto_t *command)
{
    if (command->cmd == ZM_CMD_ACK || command->cmd == ZM_CMD_RELEASE) {
        ZM_FUZZ_CHECK(command->ack_count >= (command->cmd == ZM_CMD_ACK ? 1u : 0u));
        ZM_FUZZ_CHECK(command->ack_count <= ZM_ACK_MAX);
        ZM_FUZZ_CHECK(command->fields == 2 + command->ack_count);
        ZM_FUZZ_CHECK(command->id == command->acks[0]);
        for (uint32_t index = 0; index < command->ack_count; index++)
            ZM_FUZZ_CHECK(command->acks[index] >= 1);
    }
    else
        ZM_FUZZ_CHECK(command->ack_count == 0 && command->acks[0] == 0);
    if (command->cmd == ZM_CMD_DELIVER)
        ZM_FUZZ_CHECK(command->id >= 1 && command->attempt >= 1);
    else if (command->cmd != ZM_CMD_REQUEST)
        ZM_FUZZ_CHECK(command->attempt == 0);
}

//  The ranges of ZMP.md sections 5, 16.2 and 20 for the fields the command carries.
static void
s_check_fields(const zm_proto_t *command)
{
    if (s_has_name(command->cmd))
        ZM_FUZZ_CHECK(zm_proto_valid_name(command->service, strlen(command->service)));
    else
        ZM_FUZZ_CHECK(command->service[0] == '\0');
    if (command->cmd == ZM_CMD_REPLY || command->cmd == ZM_CMD_DISCONNECT
        || command->cmd == ZM_CMD_REFUSE || command->cmd == ZM_CMD_DONE
        || command->cmd == ZM_CMD_APPLIED)
        ZM_FUZZ_CHECK(command->status >= 100 && command->status <= 999);
    else
        ZM_FUZZ_CHECK(command->status == 0);
    s_check_session(command);
    s_check_pipe_fields(command);
    s_check_repl_fields(command);
    if (!s_has_id(command->cmd) && command->cmd != ZM_CMD_JOIN)
        ZM_FUZZ_CHECK(command->id == 0);
    if (command->cmd != ZM_CMD_CALL && command->cmd != ZM_CMD_READY
        && command->cmd != ZM_CMD_PUSH)
        ZM_FUZZ_CHECK(command->flags == 0);
    if (command->cmd != ZM_CMD_PROGRESS)
        ZM_FUZZ_CHECK(command->extend_ms == 0);
    if (command->cmd != ZM_CMD_CALL && command->cmd != ZM_CMD_REQUEST)
        ZM_FUZZ_CHECK(command->timeout_ms == 0);
    //  Streams (ZMP.md 6.10): a CALL's or REQUEST's first credit, a CREDIT's grant, a PART's seq.
    if (command->cmd == ZM_CMD_CREDIT)
        ZM_FUZZ_CHECK(command->window >= 1 && command->window <= ZM_WINDOW_MAX);
    else if (command->cmd == ZM_CMD_CALL || command->cmd == ZM_CMD_REQUEST)
        ZM_FUZZ_CHECK(command->window <= ZM_WINDOW_MAX);
    else
        ZM_FUZZ_CHECK(command->window == 0);
    ZM_FUZZ_CHECK(strlen(command->reason) <= ZM_REASON_MAX);
    if (command->cmd != ZM_CMD_DISCONNECT)
        ZM_FUZZ_CHECK(command->reason[0] == '\0');
}

//  A decoded command: right frames, fields in range, body taken and within limits.
static void
s_check_decoded(const zm_proto_t *command, zmsg_t *msg, size_t frames,
                const zm_proto_limits_t *limits)
{
    ZM_FUZZ_CHECK(s_valid_cmd(command->cmd));
    bool has_body = s_has_body(command->cmd);
    ZM_FUZZ_CHECK(frames == (has_body ? 3u : 2u));
    ZM_FUZZ_CHECK(zmsg_size(msg) == 2);                 //  the body, if any, moved out
    ZM_FUZZ_CHECK(has_body == (command->body != NULL));
    zframe_t *header = zmsg_last(msg);
    ZM_FUZZ_CHECK(zframe_size(header) <= ZM_HEADER_MAX);
    ZM_FUZZ_CHECK(zm_pack_check(zframe_data(header), zframe_size(header), 0) == ZMESH_OK);
    if (command->body) {
        size_t max_body = limits && limits->max_body ? limits->max_body : ZM_BODY_MAX_DEFAULT;
        if (command->cmd == ZM_CMD_SNAPSHOT)            //  a chunk: bin 32 head + 64 KiB
            max_body = ZM_SNAPSHOT_CHUNK + 5;
        ZM_FUZZ_CHECK(zframe_size(command->body) <= max_body);
        if (limits && limits->check_body)
            ZM_FUZZ_CHECK(zm_pack_check(zframe_data(command->body), zframe_size(command->body),
                                        limits->max_depth)
                          == ZMESH_OK);
    }
    s_check_fields(command);
}

static void
s_check_same_fields(const zm_proto_t *a, const zm_proto_t *b)
{
    ZM_FUZZ_CHECK(a->cmd == b->cmd);
    ZM_FUZZ_CHECK(a->id == b->id);
    ZM_FUZZ_CHECK(a->status == b->status);
    ZM_FUZZ_CHECK(a->timeout_ms == b->timeout_ms);
    ZM_FUZZ_CHECK(a->slots == b->slots);
    ZM_FUZZ_CHECK(a->heartbeat_ms == b->heartbeat_ms);
    ZM_FUZZ_CHECK(a->liveness == b->liveness);
    ZM_FUZZ_CHECK(a->flags == b->flags);
    ZM_FUZZ_CHECK(a->attempt == b->attempt);
    ZM_FUZZ_CHECK(a->extend_ms == b->extend_ms);
    ZM_FUZZ_CHECK(a->credit == b->credit);
    ZM_FUZZ_CHECK(a->window == b->window);
    ZM_FUZZ_CHECK(a->seq == b->seq);
    ZM_FUZZ_CHECK(a->epoch == b->epoch);
    ZM_FUZZ_CHECK(a->replicas == b->replicas);
    ZM_FUZZ_CHECK(a->quorum == b->quorum);
    ZM_FUZZ_CHECK(a->kind == b->kind);
    ZM_FUZZ_CHECK(a->index == b->index);
    ZM_FUZZ_CHECK(a->more == b->more);
    ZM_FUZZ_CHECK(a->ack_count == b->ack_count);
    ZM_FUZZ_CHECK(memcmp(a->acks, b->acks, sizeof a->acks) == 0);
    ZM_FUZZ_CHECK(strcmp(a->service, b->service) == 0);
    ZM_FUZZ_CHECK(strcmp(a->reason, b->reason) == 0);
}

//  Encodes the command (taking its body), decodes that again and checks
//  nothing changed, then that encoding the result gives the same bytes.
static void
s_check_round_trip(zm_proto_t *command, const zm_proto_limits_t *limits)
{
    zm_proto_t expected = *command;                     //  fields only: body borrowed
    zframe_t *body = command->body ? zframe_dup(command->body) : NULL;
    zmsg_t *encoded = zm_proto_encode(command);
    ZM_FUZZ_CHECK(command->body == NULL);
    zmsg_t *copy = zmsg_dup(encoded);
    zm_proto_t again;
    zm_proto_error_t error;
    zm_proto_init(&again);
    ZM_FUZZ_CHECK(zm_proto_decode(&again, encoded, limits, &error));
    s_check_same_fields(&again, &expected);
    ZM_FUZZ_CHECK(s_frame_equal(again.body, body));
    zmsg_t *second = zm_proto_encode(&again);
    ZM_FUZZ_CHECK(s_msg_equal(second, copy));
    zmsg_destroy(&second);
    zmsg_destroy(&copy);
    zmsg_destroy(&encoded);
    zframe_destroy(&body);
    zm_proto_reset(&again);
}

//  A refused message: untouched, and an error the peer can be answered with.
static void
s_check_refused(const zm_proto_t *command, zmsg_t *msg, size_t frames,
                const zm_proto_error_t *error)
{
    ZM_FUZZ_CHECK(zmsg_size(msg) == frames);
    ZM_FUZZ_CHECK(command->body == NULL);
    ZM_FUZZ_CHECK(command->cmd == 0 || s_valid_cmd(command->cmd));
    ZM_FUZZ_CHECK(error->status == ZM_STATUS_MALFORMED || error->status == ZM_STATUS_TOO_BIG
                  || error->status == ZM_STATUS_BAD_VERSION);
    ZM_FUZZ_CHECK(error->reason && error->reason[0]);
    if (error->have_id)
        ZM_FUZZ_CHECK(s_has_id(command->cmd));
    //  A PUSH refused once its seq was read can be answered REFUSE(pipeline, seq).
    if (error->have_id && command->cmd == ZM_CMD_PUSH)
        ZM_FUZZ_CHECK(zm_proto_valid_name(command->service, strlen(command->service)));
}

static s_outcome_t
s_decode(zmsg_t *original, const zm_proto_limits_t *limits)
{
    zmsg_t *msg = zmsg_dup(original);
    size_t frames = zmsg_size(msg);
    zm_proto_t command;
    zm_proto_error_t error;
    zm_proto_init(&command);
    s_outcome_t outcome = {.ok = zm_proto_decode(&command, msg, limits, &error)};
    outcome.cmd = command.cmd;
    if (outcome.ok) {
        s_check_decoded(&command, msg, frames, limits);
        s_check_round_trip(&command, limits);
    }
    else {
        s_check_refused(&command, msg, frames, &error);
        outcome.status = error.status;
        outcome.reason = error.reason;
    }
    zm_proto_reset(&command);
    zmsg_destroy(&msg);
    return outcome;
}

static bool
s_same_outcome(s_outcome_t a, s_outcome_t b)
{
    return a.ok == b.ok && a.cmd == b.cmd && a.status == b.status && a.reason == b.reason;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    zmsg_t *msg = s_message(data, size);
    s_outcome_t broker = s_decode(msg, &s_broker);
    s_outcome_t peer = s_decode(msg, &s_peer);
    s_outcome_t fallback = s_decode(msg, NULL);
    s_outcome_t tight = s_decode(msg, &s_tight);
    //  NULL limits mean a default-sized, unchecked body: the peer variant.
    ZM_FUZZ_CHECK(s_same_outcome(fallback, peer));
    //  The command name is read before any limit applies.
    ZM_FUZZ_CHECK(broker.cmd == peer.cmd && tight.cmd == peer.cmd);
    //  Looser limits accept whatever tighter ones do; a failure before the
    //  body is checked is the same under every limit.
    if (tight.ok)
        ZM_FUZZ_CHECK(broker.ok);
    if (broker.ok)
        ZM_FUZZ_CHECK(peer.ok);
    if (!peer.ok)
        ZM_FUZZ_CHECK(s_same_outcome(broker, peer) && s_same_outcome(tight, peer));
    zmsg_destroy(&msg);
    return 0;
}
