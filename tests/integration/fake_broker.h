//  fake_broker - a broker played by the test itself, for the tests of the client, worker and
//  replica libraries that need a peer doing exactly what each case asks, including what a
//  real broker never does: a ROUTER bound to tcp://127.0.0.1 on a port the system picks, that
//  receives through the codec with a deadline (HEARTBEATs skipped), expects a given command,
//  and sends a command to a routing id. It holds no state of its own beyond the socket; the
//  tests decide everything. zm_fake_broker_poll, _post and _post_msg make no cmocka call,
//  so a thread other than the test's may use them; the rest fail the running test.
#ifndef ZM_FAKE_BROKER_H_INCLUDED
#define ZM_FAKE_BROKER_H_INCLUDED

#include "zm_proto.h"

#include <assert.h>
#include <czmq.h>
#include <stdbool.h>

typedef struct {
    zsock_t *router;                  //  owned: bound to endpoint
    char endpoint[64];                //  "tcp://127.0.0.1:PORT"
    zm_proto_limits_t limits;         //  what recv decodes with; new sets max_body 1 MiB
} zm_fake_broker_t;

//  A new fake broker, bound. Fails the test if it cannot bind.
zm_fake_broker_t *zm_fake_broker_new(void);

//  Closes the socket and frees the fake; sets *self_p to NULL. Does nothing on NULL.
void zm_fake_broker_destroy(zm_fake_broker_t **self_p);

//  cmocka fixture: *state becomes a new fake broker; teardown destroys it.
int zm_fake_broker_setup(void **state);
int zm_fake_broker_teardown(void **state);
#define ZM_FAKE_BROKER_TEST(name)                                                            \
    cmocka_unit_test_setup_teardown(name, zm_fake_broker_setup, zm_fake_broker_teardown)

//  Waits up to timeout_ms for a message that is not a HEARTBEAT and decodes it into command
//  (initialised here; the caller resets it). *routing_p (may be NULL) gets the sender, owned
//  by the caller. Returns 1 for a command, 0 if none came in time, -1 if what came did not
//  decode (or the receive failed), with *reason_p (may be NULL) saying why. No cmocka call.
int zm_fake_broker_poll(zm_fake_broker_t *self, zm_proto_t *command, zframe_t **routing_p,
                        int timeout_ms, const char **reason_p);

//  zm_fake_broker_poll, failing the test on a message that does not decode. True for a
//  command, false if none came in time.
bool zm_fake_broker_recv(zm_fake_broker_t *self, zm_proto_t *command, zframe_t **routing_p,
                         int timeout_ms);

//  Receives until the command cmd comes (other commands are dropped) and returns its sender;
//  fails the test if none came within timeout_ms.
zframe_t *zm_fake_broker_expect(zm_fake_broker_t *self, zm_cmd_t cmd, zm_proto_t *command,
                                int timeout_ms);

//  The next command must be cmd, within timeout_ms; returns its sender, or fails the test.
zframe_t *zm_fake_broker_expect_next(zm_fake_broker_t *self, zm_cmd_t cmd, zm_proto_t *command,
                                     int timeout_ms);

//  Sends *msg_p ([empty][header][body?], taken whatever happens) to routing (borrowed): for
//  what the codec would not encode. Returns 0, or -1 if the send failed. No cmocka call.
int zm_fake_broker_post_msg(zm_fake_broker_t *self, zframe_t *routing, zmsg_t **msg_p);

//  Sends command to routing (borrowed), taking command's body whatever happens. Returns 0,
//  or -1 if the send failed. No cmocka call.
int zm_fake_broker_post(zm_fake_broker_t *self, zframe_t *routing, zm_proto_t *command);

//  zm_fake_broker_post, failing the test if the send failed.
void zm_fake_broker_send(zm_fake_broker_t *self, zframe_t *routing, zm_proto_t *command);

#endif
