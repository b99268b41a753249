//  test_hostile_random - a storm of random bytes against a broker with its
//  default limits (one endpoint, tcp://127.0.0.1:*), while a good client
//  calls an echo worker in a loop on its own thread. 20 zmq DEALERs send 50
//  random multi-frame messages each; then come waves of 100 plain TCP
//  connections, all open at once, each sending 64 KiB in random-size chunks
//  (a third pure noise, a third noise after a valid ZMTP 3.0 greeting, a
//  third well-formed ZMTP frames of random content after greeting and
//  READY, so that libzmq hands the broker whole garbage messages) and then
//  waiting, briefly, for the broker to close them. Waves go on until the
//  good client has succeeded 10 times since the storm began (usually one or
//  two waves; at most 20). The good client must see no failure; afterwards
//  a call still works, the echo worker is still registered, the rejection
//  counters grew and every DEALER was kicked (--max-garbage defaults to 16).
//  All randomness comes from fixed seeds, so a failure replays.
#define _GNU_SOURCE
#include "harness.h"
#include "hostile.h"
#include "wire.h"
#include "zmesh.h"

#include <arpa/inet.h>
#include <czmq.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#define S_CONNECTIONS 100
#define S_BYTES_EACH (64 * 1024)
#define S_CHUNK_MAX 4096
#define S_DEALERS 20
#define S_DEALER_MESSAGES 50
#define S_SEED 0x5eed2024u
#define S_SEND_TIMEOUT_MS 500         //  one send() to a broker that stopped reading
#define S_SEND_PHASE_MS 10000         //  all of a wave's sends
#define S_DRAIN_MS 500                //  for the broker to close a wave's connections
#define S_WAVES_MAX 20                //  waves of S_CONNECTIONS at most
#define S_GOOD_DURING 10              //  good calls that must succeed during the storm

//  The good client's loop, on its own thread.
typedef struct {
    const char *endpoint;             //  borrowed
    atomic_bool stop;
    atomic_ulong ok;                  //  calls answered with the request
    atomic_ulong failed;              //  anything else
    char error[256];                  //  the first failure
    pthread_t thread;
} s_good_t;

//  One raw TCP connection of the storm.
typedef struct {
    int fd;                           //  owned; -1 once closed or failed
    size_t sent;                      //  bytes of S_BYTES_EACH done
    int mode;                         //  0 noise, 1 greeting + noise, 2 greeting + frames
    uint64_t random;                  //  its own PRNG state
} s_conn_t;

static void *
s_good_loop(void *arg)
{
    s_good_t *self = arg;
    zmesh_client_t *client = zmesh_client_new(self->endpoint, NULL);
    for (uint32_t i = 0; client && !atomic_load(&self->stop); i++) {
        uint8_t request[6] = {0x91, 0xce, (uint8_t) (i >> 24), (uint8_t) (i >> 16),
                              (uint8_t) (i >> 8), (uint8_t) i};    //  [i], i as uint 32
        zmesh_msg_t *reply = NULL;
        int rc = zmesh_client_call(client, "echo", request, sizeof request, 5000, &reply);
        bool same = rc == ZMESH_OK && zmesh_msg_size(reply) == sizeof request
                    && memcmp(zmesh_msg_data(reply), request, sizeof request) == 0;
        if (!same && atomic_fetch_add(&self->failed, 1) == 0)
            snprintf(self->error, sizeof self->error, "call %u: %s (%s)", i, zmesh_strerror(rc),
                     zmesh_client_error(client));
        if (same)
            atomic_fetch_add(&self->ok, 1);
        zmesh_msg_destroy(&reply);
    }
    if (!client) {
        snprintf(self->error, sizeof self->error, "no client");
        atomic_fetch_add(&self->failed, 1);
    }
    zmesh_client_destroy(&client);
    return NULL;
}

static bool
s_good_has_called(void *arg)
{
    s_good_t *self = arg;
    return atomic_load(&self->ok) > 0 || atomic_load(&self->failed) > 0;
}

//  ---------------------------------------------------------------------
//  The storm

//  What a NULL-mechanism ZMTP 3.0 DEALER says first: greeting, then READY.
static const uint8_t s_greeting[64] = {0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0, 'N', 'U', 'L',
                                       'L'};
static const uint8_t s_ready[] = "\x04\x1c\x05READY\x0bSocket-Type\0\0\0\x06" "DEALER";

//  The bytes one connection sends: noise (mode 0), greeting and noise (1),
//  or greeting, READY and short ZMTP frames of noise, some with MORE (2).
static void
s_stream(int mode, uint64_t *random, uint8_t *stream)
{
    size_t at = 0;
    if (mode >= 1) {
        memcpy(stream, s_greeting, sizeof s_greeting);
        at = sizeof s_greeting;
    }
    if (mode == 2) {
        memcpy(stream + at, s_ready, sizeof s_ready - 1);
        at += sizeof s_ready - 1;
    }
    while (mode == 2 && at + 2 + 255 <= S_BYTES_EACH) {
        uint64_t draw = zm_hostile_random(random);
        size_t size = (draw >> 8) % 200;
        stream[at++] = (uint8_t) (draw & 1);                //  MORE or last frame
        stream[at++] = (uint8_t) size;
        zm_hostile_random_bytes(random, stream + at, size);
        at += size;
    }
    zm_hostile_random_bytes(random, stream + at, S_BYTES_EACH - at);
}

//  A blocking TCP connection to the tcp://A.B.C.D:PORT endpoint; -1 on failure.
static int
s_tcp_connect(const char *endpoint)
{
    const char *colon = strrchr(endpoint, ':');
    struct sockaddr_in address = {.sin_family = AF_INET};
    address.sin_port = htons((uint16_t) atoi(colon ? colon + 1 : "0"));
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval timeout = {.tv_usec = S_SEND_TIMEOUT_MS * 1000};
    if (fd >= 0 && (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout) != 0
                    || connect(fd, (struct sockaddr *) &address, sizeof address) != 0)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

//  What became of the storm's connections.
typedef struct {
    size_t connected;                 //  connect() succeeded
    size_t cut;                       //  closed by the broker before all was sent
    size_t closed;                    //  closed by the broker afterwards
    size_t left_open;                 //  still open when the storm ended
} s_storm_t;

//  Sends each connection's stream in random-size chunks, round robin, so
//  that all are open at once. A connection the broker closes is closed here.
//  A broker that stops reading altogether costs at most S_SEND_PHASE_MS.
static void
s_tcp_send(s_conn_t *conns, const uint8_t *streams, s_storm_t *storm)
{
    size_t sending = 0;
    for (size_t i = 0; i < S_CONNECTIONS; i++)
        sending += conns[i].fd >= 0;
    int64_t deadline = zm_harness_now() + S_SEND_PHASE_MS;
    while (sending > 0 && zm_harness_now() < deadline)
        for (size_t i = 0; i < S_CONNECTIONS; i++) {
            s_conn_t *conn = &conns[i];
            size_t left = S_BYTES_EACH - conn->sent;
            if (conn->fd < 0 || left == 0)
                continue;
            size_t size = 1 + zm_hostile_random(&conn->random) % S_CHUNK_MAX;
            ssize_t rc = send(conn->fd, streams + i * S_BYTES_EACH + conn->sent,
                              size < left ? size : left, MSG_NOSIGNAL);
            if (rc > 0)
                conn->sent += (size_t) rc;
            else {
                close(conn->fd);
                conn->fd = -1;
                storm->cut++;
            }
            sending -= rc <= 0 || conn->sent == S_BYTES_EACH;
        }
}

//  Reads and drops what the broker sends until it closes each connection,
//  or deadline_ms pass: the storm lasts while the broker digests it.
static void
s_tcp_drain(s_conn_t *conns, s_storm_t *storm, int deadline_ms)
{
    int64_t deadline = zm_harness_now() + deadline_ms;
    struct pollfd items[S_CONNECTIONS];
    while (true) {
        nfds_t count = 0;
        for (size_t i = 0; i < S_CONNECTIONS; i++)
            if (conns[i].fd >= 0)
                items[count++] = (struct pollfd){.fd = conns[i].fd, .events = POLLIN};
        int64_t left = deadline - zm_harness_now();
        if (count == 0 || left <= 0 || poll(items, count, (int) left) < 0)
            break;
        for (nfds_t j = 0; j < count; j++) {
            uint8_t buffer[16384];
            ssize_t rc = items[j].revents ? read(items[j].fd, buffer, sizeof buffer) : 1;
            for (size_t i = 0; rc <= 0 && i < S_CONNECTIONS; i++)
                if (conns[i].fd == items[j].fd) {
                    close(conns[i].fd);
                    conns[i].fd = -1;
                    storm->closed++;
                }
        }
    }
    for (size_t i = 0; i < S_CONNECTIONS; i++)
        if (conns[i].fd >= 0) {
            close(conns[i].fd);
            storm->left_open++;
        }
}

//  One wave: opens S_CONNECTIONS connections, all at once, sends each its
//  stream and waits at most S_DRAIN_MS for the broker to close them.
static void
s_tcp_wave(const char *endpoint, uint64_t seed, s_storm_t *storm)
{
    s_conn_t *conns = calloc(S_CONNECTIONS, sizeof *conns);
    uint8_t *streams = malloc((size_t) S_CONNECTIONS * S_BYTES_EACH);
    assert(conns && streams);
    for (size_t i = 0; i < S_CONNECTIONS; i++) {
        conns[i].random = zm_hostile_random(&seed);
        conns[i].mode = (int) (i % 3);
        s_stream(conns[i].mode, &conns[i].random, streams + i * S_BYTES_EACH);
        conns[i].fd = s_tcp_connect(endpoint);
        storm->connected += conns[i].fd >= 0;
    }
    s_tcp_send(conns, streams, storm);
    s_tcp_drain(conns, storm, S_DRAIN_MS);
    free(streams);
    free(conns);
}

//  Waves of connections, at least one, until the good client has succeeded
//  S_GOOD_DURING times since the storm began (so "during" is never a matter
//  of luck) or S_WAVES_MAX waves have passed. Returns the number of waves.
static size_t
s_tcp_storm(const char *endpoint, s_good_t *good, unsigned long before, s_storm_t *storm)
{
    memset(storm, 0, sizeof *storm);
    size_t waves = 0;
    do
        s_tcp_wave(endpoint, S_SEED + waves, storm);
    while (++waves < S_WAVES_MAX && atomic_load(&good->ok) - before < S_GOOD_DURING);
    return waves;
}

typedef struct {
    zsock_t *socks[S_DEALERS];        //  owned
} s_dealers_t;

static void
s_dealers_destroy(void **self_p)
{
    s_dealers_t *self = *self_p;
    for (size_t i = 0; i < S_DEALERS; i++)
        zsock_destroy(&self->socks[i]);
    free(self);
    *self_p = NULL;
}

//  One random message of 1 to 5 frames: empty, a ZMP1-looking header with
//  noise after it, or noise of up to 64 or 600 bytes.
static zmsg_t *
s_random_message(uint64_t *random)
{
    zmsg_t *msg = zmsg_new();
    size_t frames = 1 + zm_hostile_random(random) % 5;
    for (size_t i = 0; i < frames; i++) {
        uint8_t data[600];
        uint64_t draw = zm_hostile_random(random);
        size_t size = (draw >> 8) % ((draw & 3) == 3 ? 600 : 64), at = 0;
        if ((draw & 3) == 1) {
            memcpy(data, "\x95\xa4ZMP1\xa4" "CALL", 11);
            at = 11;
            size += at;
        }
        zm_hostile_random_bytes(random, data + at, (draw & 3) == 0 ? 0 : size - at);
        zm_wire_add(msg, data, (draw & 3) == 0 ? 0 : size);
    }
    return msg;
}

//  S_DEALERS zmq DEALERs, owned by the harness, each sending
//  S_DEALER_MESSAGES random messages (queued by libzmq: no waiting here).
static bool
s_dealer_storm(zm_harness_t *harness, const char *endpoint)
{
    s_dealers_t *dealers = calloc(1, sizeof *dealers);
    assert(dealers);
    zm_harness_adopt(harness, dealers, s_dealers_destroy);
    uint64_t random = S_SEED ^ 0xdea1e7;
    for (size_t i = 0; i < S_DEALERS; i++) {
        zsock_t *sock = dealers->socks[i] = zsock_new(ZMQ_DEALER);
        if (!sock)
            return false;
        zsock_set_linger(sock, 0);
        if (zsock_connect(sock, "%s", endpoint) != 0)
            return false;
        for (int m = 0; m < S_DEALER_MESSAGES; m++) {
            zmsg_t *msg = s_random_message(&random);
            if (zmsg_send(&msg, sock) != 0) {
                zmsg_destroy(&msg);
                return false;
            }
        }
    }
    return true;
}

//  ---------------------------------------------------------------------
//  The test

typedef struct {
    const char *endpoint;
    uint64_t at_least;
} s_kicked_t;

static bool
s_enough_kicked(void *arg)
{
    s_kicked_t *wanted = arg;
    uint64_t kicked = zm_harness_counter(wanted->endpoint, "peers_kicked");
    return kicked != UINT64_MAX && kicked >= wanted->at_least;
}

//  The broker's counters after the storm: garbage refused and kicked, and
//  nothing that good traffic would have noticed.
static void
s_check_counters(const char *endpoint, unsigned long good_calls)
{
    zm_status_t status;
    assert_int_equal(zm_harness_status(endpoint, "echo", &status), ZMESH_OK);
    uint64_t rejected = zm_status_counter(&status, "rejected_malformed")
                        + zm_status_counter(&status, "rejected_too_big")
                        + zm_status_counter(&status, "rejected_bad_version");
    print_message("counters: rejected %llu, peers_kicked %llu, dropped_unroutable %llu, "
                  "calls %llu\n", (unsigned long long) rejected,
                  (unsigned long long) zm_status_counter(&status, "peers_kicked"),
                  (unsigned long long) zm_status_counter(&status, "dropped_unroutable"),
                  (unsigned long long) zm_status_counter(&status, "calls"));
    //  Each DEALER's first 16 messages are refused before it can be kicked.
    assert_true(rejected >= S_DEALERS * 16);
    assert_true(zm_status_counter(&status, "peers_kicked") >= S_DEALERS);
    assert_true(zm_status_counter(&status, "calls") >= good_calls);
    assert_true(zm_status_counter(&status, "replies") >= good_calls);
    assert_int_equal(zm_status_counter(&status, "workers_kicked"), 0);
    assert_int_equal(zm_status_counter(&status, "worker_lost"), 0);
    assert_int_equal(zm_status_counter(&status, "expired"), 0);
    assert_int_equal(status.workers, 1);
}

static void
test_hostile_random_storm_spares_good_clients(void **state)
{
    char endpoint[256];
    zm_proc_t *broker = zm_hostile_start(*state, NULL, endpoint, sizeof endpoint);
    assert_non_null(broker);
    s_good_t good = {.endpoint = endpoint};
    assert_int_equal(pthread_create(&good.thread, NULL, s_good_loop, &good), 0);
    bool started = zm_harness_wait_until(s_good_has_called, &good, 10000);
    unsigned long before = atomic_load(&good.ok);
    int64_t storm_start = zm_harness_now();
    bool dealers_ok = s_dealer_storm(*state, endpoint);
    s_storm_t storm;
    size_t waves = s_tcp_storm(endpoint, &good, before, &storm);
    unsigned long during = atomic_load(&good.ok) - before;
    int64_t storm_ms = zm_harness_now() - storm_start;
    s_kicked_t wanted = {endpoint, S_DEALERS};
    bool kicked = zm_harness_wait_until(s_enough_kicked, &wanted, 10000);
    atomic_store(&good.stop, true);
    pthread_join(good.thread, NULL);
    print_message("storm: %zu waves, %zu connections (closed by the broker: %zu while sending, "
                  "%zu after; %zu left open), %d dealers, %lld ms; good calls %lu (%lu during "
                  "the storm), %lu failed %s\n", waves, storm.connected, storm.cut, storm.closed,
                  storm.left_open, S_DEALERS, (long long) storm_ms, atomic_load(&good.ok),
                  during, atomic_load(&good.failed), good.error);
    assert_true(started);
    assert_true(dealers_ok);
    assert_int_equal(storm.connected, waves * S_CONNECTIONS);
    assert_int_equal(atomic_load(&good.failed), 0);
    assert_true(during >= S_GOOD_DURING);
    assert_true(kicked);
    assert_true(zm_hostile_alive(broker));
    zmesh_client_t *client = zm_harness_client(*state, endpoint);
    assert_non_null(client);
    assert_true(zm_wire_echo_ok(client));
    s_check_counters(endpoint, atomic_load(&good.ok));
}

int
main(int argc, char **argv)
{
    zm_harness_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hostile_random_storm_spares_good_clients,
                                        zm_harness_setup, zm_harness_teardown),
    };
    return cmocka_run_group_tests_name("integration_hostile_random", tests, NULL, NULL);
}
