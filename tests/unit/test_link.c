//  test_link - a peer's connection to the broker (zm_link): which DISCONNECT
//  statuses are final, the backoff after a refusal, the clock's decisions
//  and the poll wait at explicit times, the walk of the broker list, the
//  HEARTBEAT it sends and the commands it reads. The broker's side is a
//  ROUTER on inproc: nothing goes on the network.
#include "zm_link.h"
#include "zm_proto.h"
#include "zmesh.h"

#include <czmq.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#define S_WAIT_MS 2000              //  deadline for a message on inproc

//  Two brokers and a link to them. Each test binds new names: libzmq may
//  release a closed socket's inproc name only later.
typedef struct {
    char endpoint_a[64];
    char endpoint_b[64];
    zsock_t *broker_a;
    zsock_t *broker_b;
    zm_endpoints_t *endpoints;
    zm_link_t link;
} s_fixture_t;

static int
s_setup(void **state)
{
    static int tests;
    s_fixture_t *self = calloc(1, sizeof *self);
    assert_non_null(self);
    tests++;
    snprintf(self->endpoint_a, sizeof self->endpoint_a, "inproc://test-link-a-%d", tests);
    snprintf(self->endpoint_b, sizeof self->endpoint_b, "inproc://test-link-b-%d", tests);
    self->broker_a = zsock_new(ZMQ_ROUTER);
    self->broker_b = zsock_new(ZMQ_ROUTER);
    assert_int_equal(zsock_bind(self->broker_a, "%s", self->endpoint_a), 0);
    assert_int_equal(zsock_bind(self->broker_b, "%s", self->endpoint_b), 0);
    char list[160];
    snprintf(list, sizeof list, "%s,%s", self->endpoint_a, self->endpoint_b);
    self->endpoints = zm_endpoints_new(list);
    assert_non_null(self->endpoints);
    zm_link_init(&self->link, "test", self->endpoints, NULL, 1000, 3);
    *state = self;
    return 0;
}

static int
s_teardown(void **state)
{
    s_fixture_t *self = *state;
    zm_link_drop(&self->link);
    zm_endpoints_destroy(&self->endpoints);
    zsock_destroy(&self->broker_b);
    zsock_destroy(&self->broker_a);
    free(self);
    return 0;
}

static zm_proto_t
s_heartbeat(void)
{
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = ZM_CMD_HEARTBEAT;
    return command;
}

//  A DISCONNECT from the broker.
static zm_proto_t
s_disconnect(uint32_t status, const char *reason)
{
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = ZM_CMD_DISCONNECT;
    command.status = status;
    snprintf(command.reason, sizeof command.reason, "%s", reason);
    return command;
}

//  Receives one message at broker within the deadline and decodes it;
//  *routing_id_p (if not NULL) gets the sender's routing id.
static void
s_broker_recv(zsock_t *broker, zm_proto_t *command, zframe_t **routing_id_p)
{
    zpoller_t *poller = zpoller_new(broker, NULL);
    assert_ptr_equal(zpoller_wait(poller, S_WAIT_MS), broker);
    zpoller_destroy(&poller);
    zmsg_t *msg = zmsg_recv(broker);
    assert_non_null(msg);
    zframe_t *routing_id = zmsg_pop(msg);
    zm_proto_error_t error;
    assert_true(zm_proto_decode(command, msg, NULL, &error));
    zmsg_destroy(&msg);
    if (routing_id_p)
        *routing_id_p = routing_id;
    else
        zframe_destroy(&routing_id);
}

//  Sends frames (the routing id, then the message) from broker.
static void
s_broker_send(zsock_t *broker, zframe_t *routing_id, zmsg_t **msg_p)
{
    zframe_t *copy = zframe_dup(routing_id);
    zmsg_prepend(*msg_p, &copy);
    assert_int_equal(zmsg_send(msg_p, broker), 0);
}

//  Waits until the link's socket has something to read.
static void
s_link_wait(zm_link_t *link)
{
    zpoller_t *poller = zpoller_new(link->sock, NULL);
    assert_ptr_equal(zpoller_wait(poller, S_WAIT_MS), link->sock);
    zpoller_destroy(&poller);
}

//  Counts the commands handed over; stops reading after stop_after.
typedef struct {
    int count;
    int stop_after;
    zm_cmd_t last;
} s_counter_t;

static bool
s_count(void *arg, zm_proto_t *command)
{
    s_counter_t *counter = arg;
    counter->count++;
    counter->last = command->cmd;
    return counter->count != counter->stop_after;
}

static void
test_link_final_statuses(void **state)
{
    (void) state;
    assert_true(zm_link_final(ZM_STATUS_DENIED));
    assert_true(zm_link_final(ZM_STATUS_TOO_BIG));
    assert_true(zm_link_final(ZM_STATUS_BAD_VERSION));
    assert_false(zm_link_final(ZM_STATUS_OK));
    assert_false(zm_link_final(ZM_STATUS_MALFORMED));
    assert_false(zm_link_final(ZM_STATUS_BUSY));
    assert_false(zm_link_final(ZM_STATUS_HANDLER_ERROR));
}

static void
test_link_backoff_doubles_up_to_the_cap(void **state)
{
    s_fixture_t *self = *state;
    assert_int_equal(zm_link_connect(&self->link), ZMESH_OK);
    const int expected[] = {100, 200, 400, 800, 1600, 3200, 5000, 5000};
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        zm_proto_t command = s_disconnect(ZM_STATUS_MALFORMED, "not registered");
        int64_t before = zclock_mono();
        assert_int_equal(zm_link_disconnected(&self->link, &command, false), ZMESH_OK);
        int64_t after = zclock_mono();
        assert_null(self->link.sock);
        //  The wait, plus 0 to 99 ms of jitter.
        assert_true(self->link.reconnect_at >= before + expected[i]);
        assert_true(self->link.reconnect_at <= after + expected[i] + 99);
        assert_false(zm_link_tick(&self->link, self->link.reconnect_at - 1));
        assert_true(zm_link_tick(&self->link, self->link.reconnect_at));
    }
    zm_link_registered(&self->link);
    assert_int_equal(self->link.backoff, ZM_LINK_BACKOFF_MIN);
}

static void
test_link_final_refusal_maps_to_an_error(void **state)
{
    s_fixture_t *self = *state;
    assert_int_equal(zm_link_connect(&self->link), ZMESH_OK);
    self->link.reconnect_at = 42;
    zm_proto_t denied = s_disconnect(ZM_STATUS_DENIED, "denied: serve");
    assert_int_equal(zm_link_disconnected(&self->link, &denied, true), ZMESH_EDENIED);
    assert_null(self->link.sock);
    assert_int_equal(self->link.reconnect_at, 42);       //  no new connection is planned
    assert_int_equal(self->link.backoff, ZM_LINK_BACKOFF_MIN);
    zm_proto_t version = s_disconnect(ZM_STATUS_BAD_VERSION, "ZMP2");
    assert_int_equal(zm_link_disconnected(&self->link, &version, true), ZMESH_EPROTO);
}

static void
test_link_wait_without_a_socket_is_the_reconnection(void **state)
{
    s_fixture_t *self = *state;
    self->link.reconnect_at = 1000;
    assert_int_equal(zm_link_wait_ms(&self->link, 400), 600);
    assert_int_equal(zm_link_wait_ms(&self->link, 1000), 0);
    assert_int_equal(zm_link_wait_ms(&self->link, 5000), 0);
    assert_false(zm_link_tick(&self->link, 999));
    assert_true(zm_link_tick(&self->link, 1000));
}

static void
test_link_walks_the_broker_list(void **state)
{
    s_fixture_t *self = *state;
    const char *expected[] = {self->endpoint_a, self->endpoint_b, self->endpoint_a};
    for (uint32_t i = 0; i < 3; i++) {
        assert_int_equal(zm_link_connect(&self->link), ZMESH_OK);
        assert_non_null(self->link.sock);
        assert_int_equal(self->link.session, i + 1);
        assert_string_equal(zm_link_endpoint(&self->link), expected[i]);
    }
    //  The first connection after a refusal goes on from where the list is.
    zm_proto_t command = s_disconnect(ZM_STATUS_BUSY, "busy");
    zm_link_disconnected(&self->link, &command, false);
    assert_int_equal(zm_link_connect(&self->link), ZMESH_OK);
    assert_string_equal(zm_link_endpoint(&self->link), self->endpoint_b);
}

static void
test_link_heartbeats_and_notices_silence(void **state)
{
    s_fixture_t *self = *state;
    zm_link_t *link = &self->link;
    assert_int_equal(zm_link_connect(link), ZMESH_OK);
    //  Times from 0 on: what the link sends stamps the real clock, far later.
    link->last_heard = 0;
    link->last_sent = 0;
    //  The next HEARTBEAT comes before the broker counts as gone.
    assert_int_equal(zm_link_wait_ms(link, 0), 1000);
    assert_int_equal(zm_link_wait_ms(link, 400), 600);
    assert_false(zm_link_tick(link, 999));
    assert_int_equal(link->last_sent, 0);                //  not due: nothing sent
    assert_false(zm_link_tick(link, 1000));
    assert_true(link->last_sent > 3000);
    zm_proto_t command;
    zm_proto_init(&command);
    s_broker_recv(self->broker_a, &command, NULL);
    assert_int_equal(command.cmd, ZM_CMD_HEARTBEAT);
    zm_proto_reset(&command);
    //  Sent recently, heard long ago: the wait is until the silence counts.
    link->last_sent = 2500;
    assert_int_equal(zm_link_wait_ms(link, 2500), 500);
    assert_false(zm_link_silent(link, 2999));
    assert_true(zm_link_silent(link, 3000));
    assert_true(zm_link_tick(link, 3000));               //  silent: connect again
}

static void
test_link_drain_reads_commands_and_drops_garbage(void **state)
{
    s_fixture_t *self = *state;
    zm_link_t *link = &self->link;
    assert_int_equal(zm_link_connect(link), ZMESH_OK);
    //  The broker learns the link's routing id from its first message.
    zm_proto_t command = s_heartbeat();
    assert_int_equal(zm_link_send(link, &command), ZMESH_OK);
    zframe_t *routing_id = NULL;
    s_broker_recv(self->broker_a, &command, &routing_id);
    zm_proto_reset(&command);
    //  Garbage, HEARTBEAT, HEARTBEAT, DISCONNECT, HEARTBEAT.
    for (int i = 0; i < 5; i++) {
        zmsg_t *msg;
        if (i == 0) {
            msg = zmsg_new();
            zmsg_addmem(msg, NULL, 0);
            zmsg_addstr(msg, "not a ZMP header");
        }
        else {
            command = i == 3 ? s_disconnect(ZM_STATUS_OK, "bye") : s_heartbeat();
            msg = zm_proto_encode(&command);
        }
        s_broker_send(self->broker_a, routing_id, &msg);
    }
    zframe_destroy(&routing_id);
    s_link_wait(link);
    //  At most max messages: the garbage alone, dropped, but a sign of life.
    link->last_heard = 0;
    s_counter_t counter = {0};
    zm_link_drain(link, 1, s_count, &counter);
    assert_int_equal(counter.count, 0);
    assert_true(link->last_heard > 0);
    //  The handler stops the reading after two commands.
    counter = (s_counter_t){.stop_after = 2};
    zm_link_drain(link, 100, s_count, &counter);
    assert_int_equal(counter.count, 2);
    assert_int_equal(counter.last, ZM_CMD_HEARTBEAT);
    //  Then the DISCONNECT alone.
    counter = (s_counter_t){0};
    zm_link_drain(link, 1, s_count, &counter);
    assert_int_equal(counter.count, 1);
    assert_int_equal(counter.last, ZM_CMD_DISCONNECT);
    //  Without a socket there is nothing to read.
    zm_link_drop(link);
    zm_link_drain(link, 100, s_count, &counter);
    assert_int_equal(counter.count, 1);
}

int
main(void)
{
    zsys_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_link_final_statuses),
        cmocka_unit_test_setup_teardown(test_link_backoff_doubles_up_to_the_cap, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_link_final_refusal_maps_to_an_error, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_link_wait_without_a_socket_is_the_reconnection,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_link_walks_the_broker_list, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_link_heartbeats_and_notices_silence, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_link_drain_reads_commands_and_drops_garbage,
                                        s_setup, s_teardown),
    };
    return cmocka_run_group_tests_name("link", tests, NULL, NULL);
}
