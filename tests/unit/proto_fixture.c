//  proto_fixture.c - the codec unit tests' shared fixture, message builders and decode
//  expectations (proto_fixture.h). Everything it allocates hangs off the fixture, so that
//  teardown frees it even after a failed assertion.
#include "proto_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const zm_proto_limits_t zt_proto_checked = {.max_body = 0, .check_body = true, .max_depth = 0};

int
zt_proto_setup(void **state)
{
    zt_proto_fixture_t *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    zm_proto_init(&fx->in);
    zm_proto_init(&fx->self);
    memset(fx->name, 'p', ZM_NAME_MAX + 1);
    *state = fx;
    return 0;
}

int
zt_proto_teardown(void **state)
{
    zt_proto_fixture_t *fx = *state;
    zm_proto_reset(&fx->in);
    zm_proto_reset(&fx->self);
    zmsg_destroy(&fx->msg);
    zmesh_pack_destroy(&fx->pack);
    free(fx->data);
    free(fx);
    return 0;
}

void
zt_proto_header(zt_proto_fixture_t *fx, const char *command, const char *spec, ...)
{
    zmesh_pack_destroy(&fx->pack);
    fx->pack = zmesh_pack_new();
    zmesh_pack_array(fx->pack, (uint32_t) (2 + strlen(spec)));
    zmesh_pack_str(fx->pack, "ZMP1");
    zmesh_pack_str(fx->pack, command);
    va_list args;
    va_start(args, spec);
    for (const char *kind = spec; *kind; kind++) {
        if (*kind == 'u')
            zmesh_pack_uint(fx->pack, va_arg(args, uint64_t));
        else if (*kind == 'i')
            zmesh_pack_int(fx->pack, va_arg(args, int64_t));
        else if (*kind == 's')
            zmesh_pack_str(fx->pack, va_arg(args, const char *));
        else if (*kind == 'b')
            zmesh_pack_bool(fx->pack, true);
        else
            zmesh_pack_nil(fx->pack);
    }
    va_end(args);
}

zmsg_t *
zt_proto_frames(const void *header, size_t header_size, const void *body, size_t body_size)
{
    zmsg_t *msg = zmsg_new();
    assert_non_null(msg);
    zmsg_addmem(msg, "", 0);
    zmsg_addmem(msg, header, header_size);
    if (body)
        zmsg_addmem(msg, body, body_size);
    return msg;
}

void
zt_proto_message(zt_proto_fixture_t *fx, int bodies, const void *body, size_t body_size)
{
    zmsg_destroy(&fx->msg);
    fx->msg = zt_proto_frames(zmesh_pack_data(fx->pack), zmesh_pack_size(fx->pack), NULL, 0);
    for (int index = 0; index < bodies; index++)
        zmsg_addmem(fx->msg, body, body_size);
}

zframe_t *
zt_proto_frame(const void *data, size_t size)
{
    zframe_t *frame = zframe_new(data, size);
    assert_non_null(frame);
    return frame;
}

void
zt_proto_accept(zt_proto_fixture_t *fx, const zm_proto_limits_t *limits, const char *label)
{
    zm_proto_error_t error;
    if (!zm_proto_decode(&fx->self, fx->msg, limits, &error))
        fail_msg("%s: good message refused: %d %s", label, error.status, error.reason);
    assert_int_equal(zmsg_size(fx->msg), 2);    //  the body, if any, was moved out
    zmsg_destroy(&fx->msg);
}

zm_proto_error_t
zt_proto_refuse(zt_proto_fixture_t *fx, const zm_proto_limits_t *limits, const char *label,
                zm_status_t status, bool have_id, uint64_t id)
{
    assert_non_null(fx->msg);
    size_t frames = zmsg_size(fx->msg);
    zm_proto_error_t error;
    memset(&error, 0, sizeof error);
    error.have_id = !have_id;                   //  a stale value must not survive
    bool decoded = zm_proto_decode(&fx->self, fx->msg, limits, &error);
    if (decoded || error.status != status || !error.reason || !*error.reason
        || error.have_id != have_id || (have_id && fx->self.id != id))
        fail_msg("%s: decoded %d, status %d (want %d), have_id %d (want %d), id %llu, "
                 "reason \"%s\"",
                 label, decoded, error.status, status, error.have_id, have_id,
                 (unsigned long long) fx->self.id, decoded || !error.reason ? "" : error.reason);
    assert_null(fx->self.body);
    assert_int_equal(zmsg_size(fx->msg), frames);   //  nothing taken from a refused message
    zmsg_destroy(&fx->msg);
    return error;
}

void
zt_proto_refuse_cmd(zt_proto_fixture_t *fx, const zm_proto_limits_t *limits, const char *label,
                    zm_cmd_t cmd, zm_status_t status, bool have_id, uint64_t id)
{
    zt_proto_refuse(fx, limits, label, status, have_id, id);
    if (fx->self.cmd != cmd)
        fail_msg("%s: refused as command %s, expected %s", label,
                 zm_proto_cmd_name(fx->self.cmd), zm_proto_cmd_name(cmd));
}

bool
zt_proto_has_body(zm_cmd_t cmd)
{
    switch (cmd) {
    case ZM_CMD_CALL:
    case ZM_CMD_REPLY:
    case ZM_CMD_REQUEST:
    case ZM_CMD_PART:
    case ZM_CMD_PUSH:
    case ZM_CMD_REFUSE:
    case ZM_CMD_DELIVER:
    case ZM_CMD_WRITE:
    case ZM_CMD_APPLIED:
    case ZM_CMD_SNAPSHOT:
        return true;
    default:
        return false;
    }
}

size_t
zt_proto_round_trip(zt_proto_fixture_t *fx, uint8_t *header)
{
    zm_cmd_t cmd = fx->in.cmd;
    bool has_body = zt_proto_has_body(cmd);
    zmsg_destroy(&fx->msg);
    fx->msg = zm_proto_encode(&fx->in);
    assert_non_null(fx->msg);
    assert_null(fx->in.body);
    assert_int_equal(zmsg_size(fx->msg), has_body ? 3 : 2);
    assert_int_equal(zframe_size(zmsg_first(fx->msg)), 0);
    zframe_t *frame = zmsg_next(fx->msg);
    size_t size = zframe_size(frame);
    assert_true(size <= ZM_HEADER_MAX);
    memcpy(header, zframe_data(frame), size);
    assert_int_equal(zm_pack_check(header, size, 0), ZMESH_OK);
    zm_proto_error_t error;
    if (!zm_proto_decode(&fx->self, fx->msg, &zt_proto_checked, &error))
        fail_msg("%s did not decode: %s", zm_proto_cmd_name(cmd), error.reason);
    //  The body frame moved to self; the caller still owns the rest of msg.
    assert_int_equal(zmsg_size(fx->msg), 2);
    assert_int_equal(zframe_size(zmsg_first(fx->msg)), 0);
    assert_int_equal(zframe_size(zmsg_next(fx->msg)), size);
    assert_true(has_body ? fx->self.body != NULL : fx->self.body == NULL);
    assert_int_equal(fx->self.cmd, cmd);
    zmsg_destroy(&fx->msg);
    return size;
}

void
zt_proto_assert_bytes(const uint8_t *actual, size_t size, const char *expected,
                      size_t expected_size)
{
    assert_int_equal(size, expected_size);
    assert_memory_equal(actual, expected, size);
}
