//  test_pipe_backpressure - a full pipeline slows its producers down and
//  drops nothing (ZMP.md 16.6, 16.7). With a small --max-queue and no
//  consumer: a library producer sending with ZMESH_DONTWAIT gets
//  ZMESH_EAGAIN once the pipeline is full, and the broker shows the
//  pipeline full (queued == max-queue) and its refusals (refused_full); a
//  plain zmq PUSH socket on the push endpoint finds its sends blocked
//  (EAGAIN with ZMQ_DONTWAIT) once the broker stops reading. Then a
//  consumer drains the pipeline and every message arrives, in order, none
//  dropped.
#include "harness.h"
#include "pipe.h"
#include "zmesh.h"

#include <czmq.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define S_MAX_QUEUE "50"
#define S_MAX_QUEUE_N 50
#define S_WINDOW 100                  //  the library producer's window
#define S_TOTAL 500                   //  messages the library producer sends in all
#define S_FILL_MS 20000               //  time to fill the pipeline, far beyond need
#define S_PLAIN_PAD 4000              //  plain pushes are big: socket buffers fill sooner
#define S_PLAIN_MAX 200000            //  plain pushes tried before giving up
#define S_PLAIN_MORE 100              //  plain pushes sent once a consumer drains
#define S_BLOCKED_MS 2000             //  a plain send blocked this long is held back

static const char *const s_max_queue[] = {"--max-queue", S_MAX_QUEUE, NULL};

//  The msgpack uint n.
static void
s_pack_number(zmesh_pack_t *pack, uint64_t n, size_t pad)
{
    zmesh_pack_reset(pack);
    if (pad == 0) {
        zmesh_pack_uint(pack, n);
        return;
    }
    static char padding[S_PLAIN_PAD];
    memset(padding, 'x', sizeof padding);
    zmesh_pack_map(pack, 2);
    zmesh_pack_str(pack, "n");
    zmesh_pack_uint(pack, n);
    zmesh_pack_str(pack, "pad");
    zmesh_pack_strn(pack, padding, pad < sizeof padding ? pad : sizeof padding);
}

static void
s_producer_destroy(void **producer_p)
{
    zmesh_producer_destroy((zmesh_producer_t **) producer_p);
}

static void
s_pack_destroy(void **pack_p)
{
    zmesh_pack_destroy((zmesh_pack_t **) pack_p);
}

static void
s_sock_destroy(void **sock_p)
{
    zsock_destroy((zsock_t **) sock_p);
}

typedef struct {
    zmesh_producer_t *producer;       //  borrowed
    zmesh_pack_t *pack;               //  borrowed
    const char *endpoint;
    size_t sent;                      //  sends that returned ZMESH_OK
    int last;                         //  the last send's result
    zm_pipe_status_t status;          //  the last status read
} s_fill_t;

//  Sends the next numbers with ZMESH_DONTWAIT until one does not go; true
//  once a send returns ZMESH_EAGAIN although the broker showed the pipeline
//  full and the producer refused before it (a window full only of messages
//  whose ACCEPT is not read yet frees itself), or a send fails otherwise.
static bool
s_fill_step(void *arg)
{
    s_fill_t *fill = arg;
    bool was_full = zm_pipe_status(fill->endpoint, "backlog", &fill->status) == ZMESH_OK
                    && fill->status.queued == S_MAX_QUEUE_N && fill->status.refused_full > 0;
    do {
        s_pack_number(fill->pack, fill->sent + 1, 0);
        fill->last = zmesh_producer_send(fill->producer, zmesh_pack_data(fill->pack),
                                         zmesh_pack_size(fill->pack),
                                         ZMESH_QUEUED | ZMESH_DONTWAIT);
        fill->sent += fill->last == ZMESH_OK;
    } while (fill->last == ZMESH_OK);
    return fill->last != ZMESH_EAGAIN || was_full;
}

static void
test_pipe_backpressure_dontwait_gets_eagain_then_all_arrive(void **state)
{
    zm_harness_t *harness = *state;
    zm_pipe_broker_t broker;
    assert_true(zm_pipe_broker(harness, s_max_queue, &broker));
    int rc;
    zmesh_producer_t *producer = zmesh_producer_new(broker.endpoint, "backlog", &rc);
    assert_non_null(producer);
    zm_harness_adopt(harness, producer, s_producer_destroy);
    zmesh_producer_set_window(producer, S_WINDOW);
    zmesh_pack_t *pack = zmesh_pack_new();
    zm_harness_adopt(harness, pack, s_pack_destroy);

    s_fill_t fill = {.producer = producer, .pack = pack, .endpoint = broker.endpoint};
    bool full = zm_harness_wait_until(s_fill_step, &fill, S_FILL_MS);
    zm_pipe_status_t status = fill.status;
    zm_pipe_status_print(&status, "backpressure: full");
    printf("backpressure: %zu sends went, then %s; max-queue %d, window %d\n", fill.sent,
           zmesh_strerror(fill.last), S_MAX_QUEUE_N, S_WINDOW);
    assert_true(full);
    assert_int_equal(fill.last, ZMESH_EAGAIN);
    assert_int_equal(status.queued, S_MAX_QUEUE_N);
    assert_true(status.refused_full > 0);
    size_t sent = fill.sent;
    assert_int_equal(sent, S_MAX_QUEUE_N + S_WINDOW);   //  taken, then a window refused
    s_pack_number(pack, sent + 1, 0);
    assert_int_equal(zmesh_producer_send(producer, zmesh_pack_data(pack), zmesh_pack_size(pack),
                                         ZMESH_QUEUED | ZMESH_DONTWAIT),
                     ZMESH_EAGAIN);

    char out[ZM_PIPE_PATH_MAX];
    zm_pipe_path(harness, "consumer.log", out, sizeof out);
    assert_non_null(zm_pipe_consumer(harness, broker.endpoint, "backlog", out, NULL));
    assert_int_equal(zmesh_producer_flush(producer, 30000), ZMESH_OK);
    for (; sent < S_TOTAL; sent++) {
        s_pack_number(pack, sent + 1, 0);
        assert_int_equal(zmesh_producer_send(producer, zmesh_pack_data(pack),
                                             zmesh_pack_size(pack), ZMESH_QUEUED),
                         ZMESH_OK);
    }
    assert_int_equal(zmesh_producer_flush(producer, 30000), ZMESH_OK);
    assert_true(zm_pipe_wait_drained(broker.endpoint, "backlog", 30000));

    zm_pipe_log_t *log = zm_pipe_log_load(harness, out);
    char why[256];
    bool in_order = zm_pipe_log_in_order(log, 1, S_TOTAL, why, sizeof why);
    printf("backpressure: consumer: %s\n", why);
    assert_true(in_order);
    assert_int_equal(zm_pipe_status(broker.endpoint, "backlog", &status), ZMESH_OK);
    zm_pipe_status_print(&status, "backpressure: drained");
    assert_int_equal(status.acked, S_TOTAL);
    assert_int_equal(status.drops, 0);
    assert_int_equal(status.broker_drops, 0);
}

//  A plain PUSH socket on the push endpoint, with a small send queue.
static zsock_t *
s_plain_pusher(zm_harness_t *harness, const char *push_endpoint)
{
    zsock_t *sock = zsock_new(ZMQ_PUSH);
    assert_non_null(sock);
    zm_harness_adopt(harness, sock, s_sock_destroy);
    zsock_set_linger(sock, 0);
    zsock_set_sndhwm(sock, 10);
    assert_int_equal(zsock_connect(sock, "%s", push_endpoint), 0);
    return sock;
}

//  Sends [header][message n] on the push socket; false if it would block
//  (dontwait) or its send timeout passed (errno EAGAIN both), or failed.
static bool
s_plain_push(zsock_t *sock, zmesh_pack_t *pack, uint64_t n, bool dontwait)
{
    static const char header[] = "\x95\xa4ZMP1\xa4PUSH\xa5plain\x00\x00";
    int flags = dontwait ? ZMQ_DONTWAIT : 0;
    s_pack_number(pack, n, S_PLAIN_PAD);
    void *handle = zsock_resolve(sock);
    if (zmq_send(handle, header, sizeof header - 1, flags | ZMQ_SNDMORE) < 0)
        return false;
    //  A message's later frames always go once its first has.
    return zmq_send(handle, zmesh_pack_data(pack), zmesh_pack_size(pack), 0) >= 0;
}

static void
test_pipe_backpressure_push_endpoint_blocks_then_all_arrive(void **state)
{
    zm_harness_t *harness = *state;
    zm_pipe_broker_t broker;
    assert_true(zm_pipe_broker(harness, s_max_queue, &broker));
    zsock_t *sock = s_plain_pusher(harness, broker.push);
    zmesh_pack_t *pack = zmesh_pack_new();
    zm_harness_adopt(harness, pack, s_pack_destroy);

    //  Sends go until the socket's queue, the kernel's buffers and the
    //  broker's receive queue are full. A send that would block may only be
    //  waiting for libzmq's I/O thread: one that stays blocked for
    //  S_BLOCKED_MS while the pipeline is full is held back by the broker.
    size_t sent = 0;
    int64_t deadline = zm_harness_now() + S_FILL_MS;
    bool blocked = false;
    zsock_set_sndtimeo(sock, S_BLOCKED_MS);
    while (!blocked && sent < S_PLAIN_MAX && zm_harness_now() < deadline) {
        if (s_plain_push(sock, pack, sent + 1, true) || s_plain_push(sock, pack, sent + 1, false))
            sent++;
        else if (errno == EAGAIN)
            blocked = true;
        else
            fail_msg("zmq_send: %s", zmq_strerror(errno));
    }
    zsock_set_sndtimeo(sock, 10000);
    zm_pipe_status_t status;
    assert_int_equal(zm_pipe_status(broker.endpoint, "plain", &status), ZMESH_OK);
    zm_pipe_status_print(&status, "backpressure: push endpoint blocked");
    printf("backpressure: %zu plain pushes of %d bytes went before a send blocked for %d ms\n",
           sent, S_PLAIN_PAD, S_BLOCKED_MS);
    assert_true(blocked);
    assert_int_equal(status.queued, S_MAX_QUEUE_N);

    char out[ZM_PIPE_PATH_MAX];
    zm_pipe_path(harness, "consumer.log", out, sizeof out);
    assert_non_null(zm_pipe_consumer(harness, broker.endpoint, "plain", out, NULL));
    for (size_t i = 0; i < S_PLAIN_MORE; i++, sent++)
        assert_true(s_plain_push(sock, pack, sent + 1, false));
    zm_pipe_tail_t tail;
    zm_pipe_tail_init(&tail, out);
    assert_true(zm_pipe_wait_lines(&tail, sent, 30000));
    assert_true(zm_pipe_wait_drained(broker.endpoint, "plain", 10000));

    zm_pipe_log_t *log = zm_pipe_log_load(harness, out);
    char why[256];
    bool in_order = zm_pipe_log_in_order(log, 1, sent, why, sizeof why);
    printf("backpressure: consumer of plain pushes: %s\n", why);
    assert_true(in_order);
    assert_int_equal(zm_pipe_status(broker.endpoint, "plain", &status), ZMESH_OK);
    zm_pipe_status_print(&status, "backpressure: push endpoint drained");
    assert_int_equal(status.acked, sent);
    assert_int_equal(status.drops, 0);
    assert_int_equal(status.broker_drops, 0);
}

int
main(int argc, char **argv)
{
    zm_pipe_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pipe_backpressure_dontwait_gets_eagain_then_all_arrive,
                                        zm_harness_setup, zm_harness_teardown),
        cmocka_unit_test_setup_teardown(
            test_pipe_backpressure_push_endpoint_blocks_then_all_arrive, zm_harness_setup,
            zm_harness_teardown),
    };
    return cmocka_run_group_tests_name("integration_pipe_backpressure", tests, NULL, NULL);
}
