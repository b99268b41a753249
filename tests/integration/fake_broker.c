//  fake_broker.c - the ROUTER a test plays the broker with (fake_broker.h): bind, receive
//  through the codec against a deadline, expect, send.
#include "fake_broker.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

zm_fake_broker_t *
zm_fake_broker_new(void)
{
    zm_fake_broker_t *self = calloc(1, sizeof *self);
    assert_non_null(self);
    self->router = zsock_new(ZMQ_ROUTER);
    assert_non_null(self->router);
    int port = zsock_bind(self->router, "tcp://127.0.0.1:*");
    assert_true(port > 0);
    snprintf(self->endpoint, sizeof self->endpoint, "tcp://127.0.0.1:%d", port);
    self->limits.max_body = 1 << 20;
    return self;
}

void
zm_fake_broker_destroy(zm_fake_broker_t **self_p)
{
    assert(self_p);
    zm_fake_broker_t *self = *self_p;
    if (!self)
        return;
    zsock_destroy(&self->router);
    free(self);
    *self_p = NULL;
}

int
zm_fake_broker_setup(void **state)
{
    *state = zm_fake_broker_new();
    return 0;
}

int
zm_fake_broker_teardown(void **state)
{
    zm_fake_broker_t *self = *state;
    zm_fake_broker_destroy(&self);
    return 0;
}

int
zm_fake_broker_poll(zm_fake_broker_t *self, zm_proto_t *command, zframe_t **routing_p,
                    int timeout_ms, const char **reason_p)
{
    int64_t until = zclock_mono() + timeout_ms;
    while (true) {
        int64_t left = until - zclock_mono();
        zmq_pollitem_t item = {zsock_resolve(self->router), 0, ZMQ_POLLIN, 0};
        if (left <= 0 || zmq_poll(&item, 1, (long) left) <= 0)
            return 0;
        zmsg_t *msg = zmsg_recv(self->router);
        if (!msg) {
            if (reason_p)
                *reason_p = "receive failed";
            return -1;
        }
        zframe_t *routing = zmsg_pop(msg);
        zm_proto_init(command);
        zm_proto_error_t error;
        bool decoded = zm_proto_decode(command, msg, &self->limits, &error);
        zmsg_destroy(&msg);
        if (!decoded) {
            zframe_destroy(&routing);
            if (reason_p)
                *reason_p = error.reason;
            return -1;
        }
        if (command->cmd == ZM_CMD_HEARTBEAT) {
            zframe_destroy(&routing);
            zm_proto_reset(command);
            continue;
        }
        if (routing_p)
            *routing_p = routing;
        else
            zframe_destroy(&routing);
        return 1;
    }
}

bool
zm_fake_broker_recv(zm_fake_broker_t *self, zm_proto_t *command, zframe_t **routing_p,
                    int timeout_ms)
{
    const char *reason = NULL;
    int rc = zm_fake_broker_poll(self, command, routing_p, timeout_ms, &reason);
    if (rc < 0)
        fail_msg("the fake broker got a message it cannot decode: %s", reason);
    return rc > 0;
}

zframe_t *
zm_fake_broker_expect(zm_fake_broker_t *self, zm_cmd_t cmd, zm_proto_t *command, int timeout_ms)
{
    int64_t until = zclock_mono() + timeout_ms;
    while (true) {
        zframe_t *routing = NULL;
        int64_t left = until - zclock_mono();
        if (left <= 0 || !zm_fake_broker_recv(self, command, &routing, (int) left))
            fail_msg("the fake broker got no %s within %d ms", zm_proto_cmd_name(cmd),
                     timeout_ms);
        if (command->cmd == cmd)
            return routing;
        zframe_destroy(&routing);
        zm_proto_reset(command);
    }
}

zframe_t *
zm_fake_broker_expect_next(zm_fake_broker_t *self, zm_cmd_t cmd, zm_proto_t *command,
                           int timeout_ms)
{
    zframe_t *routing = NULL;
    if (!zm_fake_broker_recv(self, command, &routing, timeout_ms))
        fail_msg("the fake broker got no %s within %d ms", zm_proto_cmd_name(cmd), timeout_ms);
    if (command->cmd != cmd)
        fail_msg("the fake broker got %s, not %s", zm_proto_cmd_name(command->cmd),
                 zm_proto_cmd_name(cmd));
    return routing;
}

int
zm_fake_broker_post_msg(zm_fake_broker_t *self, zframe_t *routing, zmsg_t **msg_p)
{
    assert(msg_p);
    if (!*msg_p)
        return -1;
    zframe_t *copy = zframe_dup(routing);
    zmsg_prepend(*msg_p, &copy);
    int rc = zmsg_send(msg_p, self->router);
    zmsg_destroy(msg_p);                        //  left to us only if the send failed
    return rc == 0 ? 0 : -1;
}

int
zm_fake_broker_post(zm_fake_broker_t *self, zframe_t *routing, zm_proto_t *command)
{
    zmsg_t *msg = zm_proto_encode(command);
    return zm_fake_broker_post_msg(self, routing, &msg);
}

void
zm_fake_broker_send(zm_fake_broker_t *self, zframe_t *routing, zm_proto_t *command)
{
    assert_int_equal(zm_fake_broker_post(self, routing, command), 0);
}
