//  zm_proto - the ZMP/1 wire codec. A header frame is one msgpack array:
//  ["ZMP1", command, fields...]; commands with a payload carry it as one
//  more frame that the codec checks but never interprets.
#include "zm_proto.h"

#include "zm_pack.h"
#include "zmesh.h"

#include <stdlib.h>
#include <string.h>

//  Shape of each command: header elements (min..max, counting signature and
//  name) and whether a body frame follows.
typedef struct {
    zm_cmd_t cmd;
    const char *name;
    uint32_t min_fields;
    uint32_t max_fields;
    bool has_body;
} s_shape_t;

static const s_shape_t s_shapes[] = {
    {ZM_CMD_CALL, "CALL", 4, 7, true},
    {ZM_CMD_REPLY, "REPLY", 4, 4, true},
    {ZM_CMD_READY, "READY", 6, 7, false},
    {ZM_CMD_REQUEST, "REQUEST", 5, 7, true},
    {ZM_CMD_HEARTBEAT, "HEARTBEAT", 2, 2, false},
    {ZM_CMD_DISCONNECT, "DISCONNECT", 4, 4, false},
    {ZM_CMD_PROGRESS, "PROGRESS", 4, 4, false},
    {ZM_CMD_PUSH, "PUSH", 5, 5, true},
    {ZM_CMD_ACCEPT, "ACCEPT", 4, 4, false},
    {ZM_CMD_REFUSE, "REFUSE", 5, 5, true},
    {ZM_CMD_RESUME, "RESUME", 4, 4, false},
    {ZM_CMD_DONE, "DONE", 5, 5, false},
    {ZM_CMD_CONSUME, "CONSUME", 6, 6, false},
    {ZM_CMD_DELIVER, "DELIVER", 5, 5, true},
    {ZM_CMD_ACK, "ACK", 3, 2 + ZM_ACK_MAX, false},
    {ZM_CMD_RELEASE, "RELEASE", 2, 2 + ZM_ACK_MAX, false},
    {ZM_CMD_PART, "PART", 4, 4, true},
    {ZM_CMD_CREDIT, "CREDIT", 4, 4, false},
    {ZM_CMD_CANCEL, "CANCEL", 3, 3, false},
    {ZM_CMD_JOIN, "JOIN", 9, 10, false},
    {ZM_CMD_WRITE, "WRITE", 6, 6, true},
    {ZM_CMD_APPLIED, "APPLIED", 5, 5, true},
    {ZM_CMD_MISSING, "MISSING", 4, 4, false},
    {ZM_CMD_SYNC, "SYNC", 3, 3, false},
    {ZM_CMD_SNAPSHOT, "SNAPSHOT", 7, 7, true},
};
#define S_SHAPES (sizeof s_shapes / sizeof s_shapes[0])

//  The largest SNAPSHOT body: ZM_SNAPSHOT_CHUNK bytes as a msgpack bin 32
//  (a 5-byte head), whatever the limits say.
#define S_SNAPSHOT_BODY_MAX (ZM_SNAPSHOT_CHUNK + 5)

//  The longest header the encoder writes must fit ZM_HEADER_MAX, or a peer
//  would refuse it: an ACK of ZM_ACK_MAX ids of 9 bytes each (array16 head,
//  "ZMP1", "ACK"), and a CONSUME, the longest pipeline command with a name
//  (fixarray, "ZMP1", "CONSUME", str8 name, three uint32).
_Static_assert(3 + 5 + 4 + ZM_ACK_MAX * 9 <= ZM_HEADER_MAX, "an ACK must fit the header");
_Static_assert(1 + 5 + 8 + 2 + ZM_NAME_MAX + 3 * 5 <= ZM_HEADER_MAX,
               "a CONSUME must fit the header");

static const s_shape_t *
s_shape_of(zm_cmd_t cmd)
{
    for (size_t i = 0; i < S_SHAPES; i++)
        if (s_shapes[i].cmd == cmd)
            return &s_shapes[i];
    return NULL;
}

static const s_shape_t *
s_shape_named(const char *name, size_t size)
{
    for (size_t i = 0; i < S_SHAPES; i++)
        if (strlen(s_shapes[i].name) == size && memcmp(s_shapes[i].name, name, size) == 0)
            return &s_shapes[i];
    return NULL;
}

void
zm_proto_init(zm_proto_t *self)
{
    assert(self);
    memset(self, 0, sizeof *self);
}

void
zm_proto_reset(zm_proto_t *self)
{
    assert(self);
    zframe_destroy(&self->body);
    zm_proto_init(self);
}

bool
zm_proto_valid_name(const char *name, size_t size)
{
    if (!name || size == 0 || size > ZM_NAME_MAX)
        return false;
    for (size_t i = 0; i < size; i++)
        if ((unsigned char) name[i] < 0x21 || (unsigned char) name[i] > 0x7e)
            return false;
    return true;
}

static bool
s_fail(zm_proto_error_t *error, zm_status_t status, const char *reason)
{
    error->status = status;
    error->reason = reason;
    return false;
}

//  Reads a uint that must fit in [min, max].
static bool
s_read_u32(zm_reader_t *reader, uint32_t min, uint32_t max, uint32_t *value_p)
{
    uint64_t value;
    if (!zm_reader_uint(reader, &value) || value < min || value > max) {
        reader->ok = false;
        return false;
    }
    *value_p = (uint32_t) value;
    return true;
}

static bool
s_read_name(zm_reader_t *reader, char *name)
{
    const char *data;
    size_t size;
    if (!zm_reader_str(reader, &data, &size) || !zm_proto_valid_name(data, size)) {
        reader->ok = false;
        return false;
    }
    memcpy(name, data, size);
    name[size] = '\0';
    return true;
}

//  Reads a seq or message id (min 0 or 1) and marks it read for the error
//  reply: a PUSH refused for its body is still answered REFUSE(seq).
static bool
s_read_id(zm_reader_t *reader, uint64_t min, uint64_t *id_p, zm_proto_error_t *error)
{
    if (!zm_reader_uint(reader, id_p) || *id_p < min) {
        reader->ok = false;
        return false;
    }
    error->have_id = true;
    return true;
}

//  ACK: 1..ZM_ACK_MAX message ids, each from 1; id repeats the first.
static bool
s_decode_ack(zm_proto_t *self, zm_reader_t *reader, uint32_t fields, zm_proto_error_t *error)
{
    if (fields - 2 > ZM_ACK_MAX)        //  the shape table says so; acks[] depends on it
        return s_fail(error, ZM_STATUS_MALFORMED, "more message ids than an ACK or RELEASE may hold");
    self->ack_count = fields - 2;
    for (uint32_t i = 0; i < self->ack_count; i++) {
        if (!zm_reader_uint(reader, &self->acks[i]) || self->acks[i] == 0) {
            reader->ok = false;
            return s_fail(error, ZM_STATUS_MALFORMED, "message id is not a number from 1");
        }
        if (i == 0) {
            self->id = self->acks[0];
            error->have_id = true;
        }
    }
    return true;
}

//  Reads the fields of a pipeline command (ZMP.md section 16.2), all but
//  ACK starting with the pipeline name. The name and then the seq or id
//  come first, so they are filled in even when a later check fails.
static bool
s_decode_pipe(zm_proto_t *self, zm_reader_t *reader, uint32_t fields, zm_proto_error_t *error)
{
    if (self->cmd == ZM_CMD_ACK || self->cmd == ZM_CMD_RELEASE)
        return s_decode_ack(self, reader, fields, error);
    if (!s_read_name(reader, self->service))
        return s_fail(error, ZM_STATUS_MALFORMED, "pipeline name is not 1..255 printable bytes");
    switch (self->cmd) {
    case ZM_CMD_PUSH:
    case ZM_CMD_ACCEPT:
    case ZM_CMD_REFUSE:
    case ZM_CMD_DONE:
        if (!s_read_id(reader, 0, &self->id, error))
            return s_fail(error, ZM_STATUS_MALFORMED, "seq is not an unsigned integer");
        if (self->cmd == ZM_CMD_PUSH && !s_read_u32(reader, 0, UINT32_MAX, &self->flags))
            return s_fail(error, ZM_STATUS_MALFORMED, "flags are not a 32-bit unsigned integer");
        if ((self->cmd == ZM_CMD_REFUSE || self->cmd == ZM_CMD_DONE)
            && !s_read_u32(reader, 100, 999, &self->status))
            return s_fail(error, ZM_STATUS_MALFORMED, "status is not a code from 100 to 999");
        return true;
    case ZM_CMD_DELIVER:
        if (!s_read_id(reader, 1, &self->id, error))
            return s_fail(error, ZM_STATUS_MALFORMED, "message id is not a number from 1");
        if (!s_read_u32(reader, 1, UINT32_MAX, &self->attempt))
            return s_fail(error, ZM_STATUS_MALFORMED, "attempt is not a number from 1");
        return true;
    case ZM_CMD_CONSUME:
        if (!s_read_u32(reader, 1, ZM_CREDIT_MAX, &self->credit)
            || !s_read_u32(reader, ZM_HEARTBEAT_MIN, ZM_HEARTBEAT_MAX, &self->heartbeat_ms)
            || !s_read_u32(reader, ZM_LIVENESS_MIN, ZM_LIVENESS_MAX, &self->liveness))
            return s_fail(error, ZM_STATUS_MALFORMED,
                          "credit, heartbeat or liveness out of range");
        return true;
    default:            //  RESUME: the last seq granted
        if (!zm_reader_uint(reader, &self->id))
            return s_fail(error, ZM_STATUS_MALFORMED, "granted seq is not an unsigned integer");
        return true;
    }
}

//  Reads the fields of a replication command (ZMP.md section 20).
static bool
s_decode_replica(zm_proto_t *self, zm_reader_t *reader, uint32_t fields,
                 zm_proto_error_t *error)
{
    uint32_t more;
    switch (self->cmd) {
    case ZM_CMD_JOIN:
        if (!s_read_name(reader, self->service))
            return s_fail(error, ZM_STATUS_MALFORMED, "service name is not 1..255 printable bytes");
        if (!s_read_u32(reader, ZM_HEARTBEAT_MIN, ZM_HEARTBEAT_MAX, &self->heartbeat_ms)
            || !s_read_u32(reader, ZM_LIVENESS_MIN, ZM_LIVENESS_MAX, &self->liveness))
            return s_fail(error, ZM_STATUS_MALFORMED, "heartbeat or liveness out of range");
        if (!s_read_u32(reader, 1, ZM_REPLICAS_MAX, &self->replicas)
            || !s_read_u32(reader, 0, self->replicas, &self->quorum))
            return s_fail(error, ZM_STATUS_MALFORMED,
                          "replicas is not 1..16 or quorum not 0..replicas");
        if (!zm_reader_uint(reader, &self->epoch) || !zm_reader_uint(reader, &self->seq))
            return s_fail(error, ZM_STATUS_MALFORMED, "epoch or seq is not an unsigned integer");
        if (fields == 10 && !zm_reader_uint(reader, &self->id))
            return s_fail(error, ZM_STATUS_MALFORMED, "replica id is not an unsigned integer");
        return true;
    case ZM_CMD_SYNC:
    case ZM_CMD_SNAPSHOT:
        if (!s_read_id(reader, 1, &self->id, error))
            return s_fail(error, ZM_STATUS_MALFORMED, "token is not a number from 1");
        if (self->cmd == ZM_CMD_SYNC)
            return true;
        break;
    default:
        break;
    }
    //  WRITE, APPLIED, MISSING, SNAPSHOT: epoch and seq next.
    if (!zm_reader_uint(reader, &self->epoch) || !zm_reader_uint(reader, &self->seq))
        return s_fail(error, ZM_STATUS_MALFORMED, "epoch or seq is not an unsigned integer");
    //  MISSING and SNAPSHOT carry a replica's state, (0, 0) when it is empty.
    if (self->cmd != ZM_CMD_MISSING && self->cmd != ZM_CMD_SNAPSHOT && self->seq == 0)
        return s_fail(error, ZM_STATUS_MALFORMED, "seq is not a number from 1");
    switch (self->cmd) {
    case ZM_CMD_WRITE:
        if (!s_read_id(reader, 0, &self->id, error))
            return s_fail(error, ZM_STATUS_MALFORMED, "write id is not an unsigned integer");
        if (!s_read_u32(reader, 0, ZM_WRITE_KIND_QUORUM_READ, &self->kind))
            return s_fail(error, ZM_STATUS_MALFORMED, "kind is not 0 (write) or 1 (quorum read)");
        return true;
    case ZM_CMD_APPLIED:
        if (!s_read_u32(reader, 100, 999, &self->status))
            return s_fail(error, ZM_STATUS_MALFORMED, "status is not a code from 100 to 999");
        return true;
    case ZM_CMD_SNAPSHOT:
        if (!s_read_u32(reader, 0, UINT32_MAX, &self->index) || !s_read_u32(reader, 0, 1, &more))
            return s_fail(error, ZM_STATUS_MALFORMED, "index or more out of range");
        self->more = more == 1;
        return true;
    default:
        return true;
    }
}

//  Reads the fields after the command name. Returns false with a reason.
static bool
s_decode_fields(zm_proto_t *self, zm_reader_t *reader, uint32_t fields,
                zm_proto_error_t *error)
{
    const char *text;
    size_t size;
    switch (self->cmd) {
    case ZM_CMD_CALL:
    case ZM_CMD_REQUEST:
        if (!zm_reader_uint(reader, &self->id))
            return s_fail(error, ZM_STATUS_MALFORMED, "request id is not an unsigned integer");
        error->have_id = true;
        if (!s_read_name(reader, self->service))
            return s_fail(error, ZM_STATUS_MALFORMED, "service name is not 1..255 printable bytes");
        if (fields >= 5 && !s_read_u32(reader, 0, UINT32_MAX, &self->timeout_ms))
            return s_fail(error, ZM_STATUS_MALFORMED, "timeout is not a 32-bit unsigned integer");
        if (fields >= 6 && self->cmd == ZM_CMD_CALL
            && !s_read_u32(reader, 0, UINT32_MAX, &self->flags))
            return s_fail(error, ZM_STATUS_MALFORMED, "flags are not a 32-bit unsigned integer");
        if (fields >= 6 && self->cmd == ZM_CMD_REQUEST
            && !s_read_u32(reader, 1, UINT32_MAX, &self->attempt))
            return s_fail(error, ZM_STATUS_MALFORMED, "attempt is not a number from 1");
        if (fields == 7 && !s_read_u32(reader, 1, ZM_WINDOW_MAX, &self->window))
            return s_fail(error, ZM_STATUS_MALFORMED, "window is not a number from 1 to 1024");
        return true;
    case ZM_CMD_REPLY:
        if (!zm_reader_uint(reader, &self->id))
            return s_fail(error, ZM_STATUS_MALFORMED, "request id is not an unsigned integer");
        error->have_id = true;
        if (!s_read_u32(reader, 100, 999, &self->status))
            return s_fail(error, ZM_STATUS_MALFORMED, "status is not a code from 100 to 999");
        return true;
    case ZM_CMD_READY:
        if (!s_read_name(reader, self->service))
            return s_fail(error, ZM_STATUS_MALFORMED, "service name is not 1..255 printable bytes");
        if (!s_read_u32(reader, 1, ZM_SLOTS_MAX, &self->slots)
            || !s_read_u32(reader, ZM_HEARTBEAT_MIN, ZM_HEARTBEAT_MAX, &self->heartbeat_ms)
            || !s_read_u32(reader, ZM_LIVENESS_MIN, ZM_LIVENESS_MAX, &self->liveness))
            return s_fail(error, ZM_STATUS_MALFORMED, "slots, heartbeat or liveness out of range");
        if (fields == 7 && !s_read_u32(reader, 0, UINT32_MAX, &self->flags))
            return s_fail(error, ZM_STATUS_MALFORMED, "flags are not a 32-bit unsigned integer");
        return true;
    case ZM_CMD_PROGRESS:
        if (!zm_reader_uint(reader, &self->id))
            return s_fail(error, ZM_STATUS_MALFORMED, "id is not an unsigned integer");
        error->have_id = true;
        if (!s_read_u32(reader, 0, UINT32_MAX, &self->extend_ms))
            return s_fail(error, ZM_STATUS_MALFORMED, "extend_ms is not a 32-bit unsigned integer");
        return true;
    case ZM_CMD_HEARTBEAT:
        return true;
    case ZM_CMD_PART:
    case ZM_CMD_CREDIT:
    case ZM_CMD_CANCEL:
        if (!zm_reader_uint(reader, &self->id))
            return s_fail(error, ZM_STATUS_MALFORMED, "id is not an unsigned integer");
        error->have_id = true;
        if (self->cmd == ZM_CMD_PART
            && (!zm_reader_uint(reader, &self->seq) || self->seq == 0))
            return s_fail(error, ZM_STATUS_MALFORMED, "seq is not a number from 1");
        if (self->cmd == ZM_CMD_CREDIT && !s_read_u32(reader, 1, ZM_WINDOW_MAX, &self->window))
            return s_fail(error, ZM_STATUS_MALFORMED, "credit is not a number from 1 to 1024");
        return true;
    case ZM_CMD_PUSH:
    case ZM_CMD_ACCEPT:
    case ZM_CMD_REFUSE:
    case ZM_CMD_RESUME:
    case ZM_CMD_DONE:
    case ZM_CMD_CONSUME:
    case ZM_CMD_DELIVER:
    case ZM_CMD_ACK:
    case ZM_CMD_RELEASE:
        return s_decode_pipe(self, reader, fields, error);
    case ZM_CMD_JOIN:
    case ZM_CMD_WRITE:
    case ZM_CMD_APPLIED:
    case ZM_CMD_MISSING:
    case ZM_CMD_SYNC:
    case ZM_CMD_SNAPSHOT:
        return s_decode_replica(self, reader, fields, error);
    case ZM_CMD_DISCONNECT:
        if (!s_read_u32(reader, 100, 999, &self->status))
            return s_fail(error, ZM_STATUS_MALFORMED, "status is not a code from 100 to 999");
        if (!zm_reader_str(reader, &text, &size) || size > ZM_REASON_MAX)
            return s_fail(error, ZM_STATUS_MALFORMED, "reason is not a string of 0..255 bytes");
        memcpy(self->reason, text, size);
        self->reason[size] = '\0';
        return true;
    }
    return s_fail(error, ZM_STATUS_MALFORMED, "unknown command");
}

//  True for "ZMP" followed by a version number: another version of ZMP,
//  answered 505, rather than garbage, answered 400.
static bool
s_other_version(const char *text, size_t size)
{
    if (size < 4 || memcmp(text, "ZMP", 3) != 0)
        return false;
    for (size_t i = 3; i < size; i++)
        if (text[i] < '0' || text[i] > '9')
            return false;
    return true;
}

//  Reads the signature and command name and picks the command's shape.
//  Returns NULL on failure; even then *seen_p is the command whose name was
//  read, when there was one, so a refused READY can still be answered with
//  DISCONNECT rather than REPLY.
static const s_shape_t *
s_decode_head(zm_reader_t *reader, uint32_t *fields_p, const s_shape_t **seen_p,
              zm_proto_error_t *error)
{
    const char *text;
    size_t size;
    *seen_p = NULL;
    if (!zm_reader_array(reader, fields_p) || *fields_p < 2) {
        s_fail(error, ZM_STATUS_MALFORMED, "header is not a msgpack array of 2 or more items");
        return NULL;
    }
    if (!zm_reader_str(reader, &text, &size)) {
        s_fail(error, ZM_STATUS_MALFORMED, "header does not start with a signature string");
        return NULL;
    }
    bool signed_ok = size == 4 && memcmp(text, ZM_PROTO_SIGNATURE, 4) == 0;
    if (!signed_ok && s_other_version(text, size))
        s_fail(error, ZM_STATUS_BAD_VERSION, "unsupported protocol version, this is ZMP1");
    else if (!signed_ok)
        s_fail(error, ZM_STATUS_MALFORMED, "signature is not ZMP1");
    if (zm_reader_str(reader, &text, &size))
        *seen_p = s_shape_named(text, size);
    if (!signed_ok)
        return NULL;
    const s_shape_t *shape = *seen_p;
    if (!shape)
        s_fail(error, ZM_STATUS_MALFORMED, "unknown command");
    else if (*fields_p < shape->min_fields || *fields_p > shape->max_fields) {
        s_fail(error, ZM_STATUS_MALFORMED, "wrong number of header fields for the command");
        shape = NULL;
    }
    return shape;
}

static bool
s_check_body(zm_cmd_t cmd, zframe_t *body, const zm_proto_limits_t *limits,
             zm_proto_error_t *error)
{
    size_t max_body = limits && limits->max_body ? limits->max_body : ZM_BODY_MAX_DEFAULT;
    //  A snapshot chunk has its own bound, whatever the body limit: catch-up
    //  must not depend on --max-body, and no sender writes a larger chunk.
    if (cmd == ZM_CMD_SNAPSHOT)
        max_body = S_SNAPSHOT_BODY_MAX;
    if (zframe_size(body) > max_body)
        return s_fail(error, ZM_STATUS_TOO_BIG, "body is over the size limit");
    if (limits && limits->check_body
        && zm_pack_check(zframe_data(body), zframe_size(body), limits->max_depth) != ZMESH_OK)
        return s_fail(error, ZM_STATUS_MALFORMED,
                      "body is not exactly one msgpack object within the depth limit");
    return true;
}

bool
zm_proto_decode(zm_proto_t *self, zmsg_t *msg, const zm_proto_limits_t *limits,
                zm_proto_error_t *error)
{
    assert(self);
    assert(msg);
    assert(error);
    zm_proto_reset(self);
    memset(error, 0, sizeof *error);
    size_t frames = zmsg_size(msg);
    zframe_t *delimiter = zmsg_first(msg);
    if (!delimiter || zframe_size(delimiter) != 0)
        return s_fail(error, ZM_STATUS_MALFORMED, "first frame is not the empty delimiter");
    zframe_t *header = zmsg_next(msg);
    if (!header)
        return s_fail(error, ZM_STATUS_MALFORMED, "no header frame");
    //  The reader is bounded, so reading the head of an oversized header is
    //  safe, and tells who to answer and how.
    zm_reader_t reader;
    zm_reader_init(&reader, zframe_data(header), zframe_size(header));
    uint32_t fields;
    const s_shape_t *seen;
    const s_shape_t *shape = s_decode_head(&reader, &fields, &seen, error);
    if (seen)
        self->cmd = seen->cmd;
    if (zframe_size(header) > ZM_HEADER_MAX)
        return s_fail(error, ZM_STATUS_TOO_BIG, "header frame is over 512 bytes");
    if (!shape)
        return false;
    self->fields = fields;
    if (!s_decode_fields(self, &reader, fields, error))
        return false;
    if (!zm_reader_done(&reader))
        return s_fail(error, ZM_STATUS_MALFORMED, "bytes after the header array");
    if (frames != (shape->has_body ? 3u : 2u))
        return s_fail(error, ZM_STATUS_MALFORMED, "wrong number of frames for the command");
    if (shape->has_body) {
        zframe_t *body = zmsg_next(msg);
        if (!s_check_body(self->cmd, body, limits, error))
            return false;
        zmsg_remove(msg, body);
        self->body = body;
    }
    return true;
}

//  Header elements to write: optional trailing fields only when they say
//  something, so a peer that predates them reads what it always did.
static uint32_t
s_field_count(const zm_proto_t *self)
{
    switch (self->cmd) {
    case ZM_CMD_CALL:
        return self->window ? 7 : self->flags ? 6 : self->timeout_ms ? 5 : 4;
    case ZM_CMD_REQUEST:
        return self->window ? 7 : self->attempt ? 6 : 5;
    case ZM_CMD_PART:
    case ZM_CMD_CREDIT:
        return 4;
    case ZM_CMD_CANCEL:
        return 3;
    case ZM_CMD_READY:
        return 7;           //  flags always: it tells the broker we read REQUEST's attempt
    case ZM_CMD_REPLY:
    case ZM_CMD_DISCONNECT:
    case ZM_CMD_PROGRESS:
        return 4;
    case ZM_CMD_HEARTBEAT:
        return 2;
    case ZM_CMD_RESUME:
    case ZM_CMD_ACCEPT:
        return 4;
    case ZM_CMD_PUSH:
    case ZM_CMD_REFUSE:
    case ZM_CMD_DONE:
    case ZM_CMD_DELIVER:
        return 5;
    case ZM_CMD_CONSUME:
        return 6;
    case ZM_CMD_ACK:
    case ZM_CMD_RELEASE:
        return 2 + self->ack_count;
    case ZM_CMD_JOIN:
        return self->id ? 10 : 9;
    case ZM_CMD_WRITE:
        return 6;
    case ZM_CMD_APPLIED:
        return 5;
    case ZM_CMD_MISSING:
        return 4;
    case ZM_CMD_SYNC:
        return 3;
    case ZM_CMD_SNAPSHOT:
        return 7;
    }
    return 2;
}

//  Writes the fields of a pipeline command after its name.
static void
s_encode_pipe(const zm_proto_t *self, zm_writer_t *writer)
{
    if (self->cmd == ZM_CMD_ACK || self->cmd == ZM_CMD_RELEASE) {
        assert(self->ack_count >= (self->cmd == ZM_CMD_ACK ? 1u : 0u));
        assert(self->ack_count <= ZM_ACK_MAX);
        for (uint32_t i = 0; i < self->ack_count; i++)
            zm_writer_uint(writer, self->acks[i]);
        return;
    }
    zm_writer_str(writer, self->service, strlen(self->service));
    switch (self->cmd) {
    case ZM_CMD_CONSUME:
        zm_writer_uint(writer, self->credit);
        zm_writer_uint(writer, self->heartbeat_ms);
        zm_writer_uint(writer, self->liveness);
        return;
    case ZM_CMD_DELIVER:
        zm_writer_uint(writer, self->id);
        zm_writer_uint(writer, self->attempt);
        return;
    case ZM_CMD_RESUME:
        zm_writer_uint(writer, self->id);
        return;
    default:            //  PUSH, ACCEPT, REFUSE, DONE: seq, then flags or status
        zm_writer_uint(writer, self->id);
        if (self->cmd == ZM_CMD_PUSH)
            zm_writer_uint(writer, self->flags);
        else if (self->cmd != ZM_CMD_ACCEPT)
            zm_writer_uint(writer, self->status);
        return;
    }
}

zmsg_t *
zm_proto_encode(zm_proto_t *self)
{
    assert(self);
    const s_shape_t *shape = s_shape_of(self->cmd);
    assert(shape);
    uint8_t buffer[ZM_HEADER_MAX];
    zm_writer_t writer;
    zm_writer_init(&writer, buffer, sizeof buffer);
    zm_writer_array(&writer, s_field_count(self));
    zm_writer_str(&writer, ZM_PROTO_SIGNATURE, 4);
    zm_writer_str(&writer, shape->name, strlen(shape->name));
    switch (self->cmd) {
    case ZM_CMD_CALL:
    case ZM_CMD_REQUEST:
        zm_writer_uint(&writer, self->id);
        zm_writer_str(&writer, self->service, strlen(self->service));
        if (s_field_count(self) >= 5)
            zm_writer_uint(&writer, self->timeout_ms);
        if (s_field_count(self) >= 6)
            zm_writer_uint(&writer, self->cmd == ZM_CMD_CALL ? self->flags : self->attempt);
        if (s_field_count(self) == 7)
            zm_writer_uint(&writer, self->window);
        break;
    case ZM_CMD_PART:
    case ZM_CMD_CREDIT:
    case ZM_CMD_CANCEL:
        zm_writer_uint(&writer, self->id);
        if (self->cmd == ZM_CMD_PART)
            zm_writer_uint(&writer, self->seq);
        else if (self->cmd == ZM_CMD_CREDIT)
            zm_writer_uint(&writer, self->window);
        break;
    case ZM_CMD_PROGRESS:
        zm_writer_uint(&writer, self->id);
        zm_writer_uint(&writer, self->extend_ms);
        break;
    case ZM_CMD_REPLY:
        zm_writer_uint(&writer, self->id);
        zm_writer_uint(&writer, self->status);
        break;
    case ZM_CMD_READY:
        zm_writer_str(&writer, self->service, strlen(self->service));
        zm_writer_uint(&writer, self->slots);
        zm_writer_uint(&writer, self->heartbeat_ms);
        zm_writer_uint(&writer, self->liveness);
        zm_writer_uint(&writer, self->flags);
        break;
    case ZM_CMD_HEARTBEAT:
        break;
    case ZM_CMD_DISCONNECT:
        zm_writer_uint(&writer, self->status);
        zm_writer_str(&writer, self->reason, strlen(self->reason));
        break;
    case ZM_CMD_PUSH:
    case ZM_CMD_ACCEPT:
    case ZM_CMD_REFUSE:
    case ZM_CMD_RESUME:
    case ZM_CMD_DONE:
    case ZM_CMD_CONSUME:
    case ZM_CMD_DELIVER:
    case ZM_CMD_ACK:
    case ZM_CMD_RELEASE:
        s_encode_pipe(self, &writer);
        break;
    case ZM_CMD_JOIN:
        zm_writer_str(&writer, self->service, strlen(self->service));
        zm_writer_uint(&writer, self->heartbeat_ms);
        zm_writer_uint(&writer, self->liveness);
        zm_writer_uint(&writer, self->replicas);
        zm_writer_uint(&writer, self->quorum);
        zm_writer_uint(&writer, self->epoch);
        zm_writer_uint(&writer, self->seq);
        if (self->id)
            zm_writer_uint(&writer, self->id);
        break;
    case ZM_CMD_SYNC:
        zm_writer_uint(&writer, self->id);
        break;
    case ZM_CMD_WRITE:
    case ZM_CMD_APPLIED:
    case ZM_CMD_MISSING:
    case ZM_CMD_SNAPSHOT:
        if (self->cmd == ZM_CMD_SNAPSHOT)
            zm_writer_uint(&writer, self->id);
        zm_writer_uint(&writer, self->epoch);
        zm_writer_uint(&writer, self->seq);
        if (self->cmd == ZM_CMD_WRITE) {
            zm_writer_uint(&writer, self->id);
            zm_writer_uint(&writer, self->kind);
        }
        else if (self->cmd == ZM_CMD_APPLIED)
            zm_writer_uint(&writer, self->status);
        else if (self->cmd == ZM_CMD_SNAPSHOT) {
            zm_writer_uint(&writer, self->index);
            zm_writer_uint(&writer, self->more ? 1 : 0);
        }
        break;
    }
    assert(writer.ok);      //  names and reasons are bounded: always fits
    zmsg_t *msg = zmsg_new();
    zframe_t *frame = zframe_new_empty();
    zmsg_append(msg, &frame);
    frame = zframe_new(buffer, writer.size);
    zmsg_append(msg, &frame);
    if (shape->has_body) {
        if (!self->body && self->cmd == ZM_CMD_REFUSE)
            self->body = zm_proto_reason_frame(self->reason);
        if (!self->body)
            self->body = zframe_new("\xc0", 1);
        zmsg_append(msg, &self->body);
    }
    zframe_destroy(&self->body);
    return msg;
}

zframe_t *
zm_proto_reason_frame(const char *reason)
{
    uint8_t buffer[ZM_REASON_MAX + 8];
    zm_writer_t writer;
    zm_writer_init(&writer, buffer, sizeof buffer);
    size_t size = strlen(reason);
    zm_writer_str(&writer, reason, size > ZM_REASON_MAX ? ZM_REASON_MAX : size);
    return zframe_new(buffer, writer.size);
}

int
zm_proto_status_error(uint32_t status)
{
    switch (status) {
    case ZM_STATUS_OK: return ZMESH_OK;
    case ZM_STATUS_MALFORMED: return ZMESH_EINVAL;
    case ZM_STATUS_NO_SERVICE: return ZMESH_ENOSERVICE;
    case ZM_STATUS_EXPIRED: return ZMESH_ETIMEDOUT;
    case ZM_STATUS_TOO_BIG: return ZMESH_ETOOBIG;
    case ZM_STATUS_HANDLER_ERROR: return ZMESH_EHANDLER;
    case ZM_STATUS_WORKER_LOST: return ZMESH_EWORKERLOST;
    case ZM_STATUS_BUSY: return ZMESH_EAGAIN;
    case ZM_STATUS_DENIED: return ZMESH_EDENIED;
    }
    return ZMESH_EPROTO;    //  BAD_VERSION, unknown
}

size_t
zm_max_body_default(void)
{
    const char *text = getenv("ZMESH_MAX_BODY");
    char *end = NULL;
    unsigned long long value = text ? strtoull(text, &end, 10) : 0;
    if (text && end != text && *end == '\0' && value >= 16 && value <= (256ull << 20))
        return (size_t) value;
    return ZM_BODY_MAX_DEFAULT;
}

const char *
zm_proto_cmd_name(zm_cmd_t cmd)
{
    const s_shape_t *shape = s_shape_of(cmd);
    return shape ? shape->name : "UNKNOWN";
}

const char *
zm_proto_status_name(uint32_t status)
{
    switch (status) {
    case ZM_STATUS_OK: return "OK";
    case ZM_STATUS_MALFORMED: return "MALFORMED";
    case ZM_STATUS_DENIED: return "DENIED";
    case ZM_STATUS_NO_SERVICE: return "NO_SERVICE";
    case ZM_STATUS_EXPIRED: return "EXPIRED";
    case ZM_STATUS_TOO_BIG: return "TOO_BIG";
    case ZM_STATUS_HANDLER_ERROR: return "HANDLER_ERROR";
    case ZM_STATUS_WORKER_LOST: return "WORKER_LOST";
    case ZM_STATUS_BUSY: return "BUSY";
    case ZM_STATUS_BAD_VERSION: return "BAD_VERSION";
    }
    return "UNKNOWN";
}
