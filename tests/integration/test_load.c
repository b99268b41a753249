//  test_load - 1,000 calls from 4 client threads (each its own client, up to
//  50 calls in flight) over 3 `tag` workers with 2 threads each. Every call
//  must be answered exactly once, with its own request inside (checked byte
//  for byte against what that call sent), every worker must serve a share,
//  and the broker's counters must show the calls, the replies and no drops.
//  Client threads never call cmocka asserts (they longjmp): they record
//  errors, and the main thread asserts after joining them.
#include "harness.h"
#include "zmesh.h"

#include <msgpack.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define S_CLIENTS 4
#define S_CALLS 1000
#define S_PER_CLIENT (S_CALLS / S_CLIENTS)
#define S_WINDOW 50                       //  calls in flight per client
#define S_WORKERS 3
#define S_TIMEOUT_MS 10000

static const char *const s_tags[S_WORKERS] = {"w1", "w2", "w3"};

//  One client thread's calls and what came back.
typedef struct {
    zmesh_client_t *client;               //  owned by the harness; only this thread uses it
    int number;                           //  0..S_CLIENTS-1
    uint64_t ids[S_PER_CLIENT];           //  request id of call i
    zmesh_msg_t *sent[S_PER_CLIENT];      //  owned: the request bytes of call i
    unsigned answers[S_PER_CLIENT];       //  how often call i completed
    uint64_t served[S_WORKERS];           //  replies per worker tag
    size_t errors;
    char first_error[256];
} s_client_t;

static void
s_error(s_client_t *self, const char *format, ...)
{
    if (self->errors++ == 0) {
        va_list args;
        va_start(args, format);
        vsnprintf(self->first_error, sizeof self->first_error, format, args);
        va_end(args);
    }
}

//  Call i of client c is [c, i, "load c/i", <i % 97 bytes of bin>]: no two alike.
static zmesh_msg_t *
s_request(int client, size_t index)
{
    char text[32], filler[97];
    snprintf(text, sizeof text, "load %d/%zu", client, index);
    memset(filler, (int) ('a' + index % 26), sizeof filler);
    zmesh_pack_t *pack = zmesh_pack_new();
    zmesh_pack_array(pack, 4);
    zmesh_pack_uint(pack, (uint64_t) client);
    zmesh_pack_uint(pack, index);
    zmesh_pack_str(pack, text);
    zmesh_pack_bin(pack, filler, index % sizeof filler);
    zmesh_msg_t *msg = zmesh_msg_new(zmesh_pack_data(pack), zmesh_pack_size(pack));
    zmesh_pack_destroy(&pack);
    return msg;
}

//  Returns the worker number of a reply {"tag": TAG, "req": <request>} whose
//  request is exactly `sent`, or -1.
static int
s_reply_worker(const zmesh_msg_t *reply, const zmesh_msg_t *sent)
{
    const char *data = zmesh_msg_data(reply);
    size_t size = zmesh_msg_size(reply), sent_size = zmesh_msg_size(sent);
    msgpack_unpacked result;
    msgpack_unpacked_init(&result);
    size_t offset = 0;
    int worker = -1;
    const msgpack_object *root = &result.data;
    if (msgpack_unpack_next(&result, data, size, &offset) == MSGPACK_UNPACK_SUCCESS
        && offset == size && root->type == MSGPACK_OBJECT_MAP && root->via.map.size == 2) {
        const msgpack_object_kv *pairs = root->via.map.ptr;
        bool keys = pairs[0].key.type == MSGPACK_OBJECT_STR && pairs[0].key.via.str.size == 3
                    && memcmp(pairs[0].key.via.str.ptr, "tag", 3) == 0
                    && pairs[1].key.type == MSGPACK_OBJECT_STR && pairs[1].key.via.str.size == 3
                    && memcmp(pairs[1].key.via.str.ptr, "req", 3) == 0
                    && pairs[0].val.type == MSGPACK_OBJECT_STR;
        //  "req" is the last value, appended verbatim: the tail must be the request.
        bool request = size > sent_size
                       && memcmp(data + size - sent_size, zmesh_msg_data(sent), sent_size) == 0;
        for (int i = 0; keys && request && i < S_WORKERS; i++)
            if (pairs[0].val.via.str.size == strlen(s_tags[i])
                && memcmp(pairs[0].val.via.str.ptr, s_tags[i], strlen(s_tags[i])) == 0)
                worker = i;
    }
    msgpack_unpacked_destroy(&result);
    return worker;
}

//  Records one completion.
static void
s_on_completion(s_client_t *self, int rc, uint64_t id, zmesh_msg_t *reply)
{
    size_t index = 0;
    while (index < S_PER_CLIENT && (self->ids[index] != id || !self->sent[index]))
        index++;
    if (index == S_PER_CLIENT) {
        s_error(self, "completion for an id never sent: %llu", (unsigned long long) id);
        return;
    }
    if (self->answers[index]++ > 0)
        s_error(self, "call %zu (id %llu) completed twice", index, (unsigned long long) id);
    if (rc != ZMESH_OK) {
        s_error(self, "call %zu failed: %s", index, zmesh_strerror(rc));
        return;
    }
    int worker = s_reply_worker(reply, self->sent[index]);
    if (worker < 0)
        s_error(self, "call %zu: reply is not {tag, req} with its own request", index);
    else
        self->served[worker]++;
}

static void *
s_client_main(void *arg)
{
    s_client_t *self = arg;
    size_t sent = 0, done = 0;
    while (done < S_PER_CLIENT) {
        while (sent < S_PER_CLIENT && sent - done < S_WINDOW) {
            self->sent[sent] = s_request(self->number, sent);
            int rc = zmesh_client_send(self->client, "tag", zmesh_msg_data(self->sent[sent]),
                                       zmesh_msg_size(self->sent[sent]), S_TIMEOUT_MS,
                                       &self->ids[sent]);
            if (rc != ZMESH_OK) {
                s_error(self, "send %zu failed: %s", sent, zmesh_strerror(rc));
                return NULL;
            }
            sent++;
        }
        uint64_t id = 0;
        zmesh_msg_t *reply = NULL;
        int rc = zmesh_client_recv(self->client, S_TIMEOUT_MS + 1000, &id, &reply);
        if (rc == ZMESH_EAGAIN) {
            s_error(self, "nothing completed within %d ms (%zu of %zu done)", S_TIMEOUT_MS,
                    done, sent);
            return NULL;
        }
        s_on_completion(self, rc, id, reply);
        zmesh_msg_destroy(&reply);
        done++;
    }
    return NULL;
}

//  Checks one client's record: no errors, every call answered exactly once.
static void
s_assert_client(const s_client_t *client, uint64_t *served)
{
    if (client->errors)
        fail_msg("client %d: %zu error(s), first: %s", client->number, client->errors,
                 client->first_error);
    for (size_t i = 0; i < S_PER_CLIENT; i++)
        if (client->answers[i] != 1)
            fail_msg("client %d: call %zu answered %u times", client->number, i,
                     client->answers[i]);
    for (int i = 0; i < S_WORKERS; i++)
        served[i] += client->served[i];
}

static void
s_assert_counters(const char *endpoint)
{
    zm_status_t status;
    assert_int_equal(zm_harness_status(endpoint, "tag", &status), ZMESH_OK);
    assert_true(zm_status_counter(&status, "calls") >= S_CALLS);
    assert_true(zm_status_counter(&status, "replies") >= S_CALLS);
    static const char *const zero[] = {
        "dropped_unroutable", "dropped_peer_full", "dropped_late_reply", "rejected_busy",
        "expired", "worker_lost", "workers_expired", "workers_kicked",
    };
    for (size_t i = 0; i < sizeof zero / sizeof zero[0]; i++)
        if (zm_status_counter(&status, zero[i]) != 0)
            fail_msg("counter %s = %llu, want 0", zero[i],
                     (unsigned long long) zm_status_counter(&status, zero[i]));
    assert_int_equal(status.inflight, 0);
    assert_int_equal(status.queued, 0);
}

static void
test_load_every_call_answered_once_by_all_workers(void **state)
{
    zm_harness_t *harness = *state;
    char endpoint[256];
    assert_non_null(
        zm_harness_broker(harness, "tcp://127.0.0.1:*", NULL, endpoint, sizeof endpoint));
    for (int i = 0; i < S_WORKERS; i++) {
        const char *extra[] = {"--tag", s_tags[i], "--threads", "2", NULL};
        assert_non_null(zm_harness_worker(harness, endpoint, "tag", "tag", extra));
    }
    assert_true(zm_harness_wait_workers(endpoint, "tag", S_WORKERS, 10000));

    static s_client_t clients[S_CLIENTS];      //  large: not on the stack
    memset(clients, 0, sizeof clients);
    pthread_t threads[S_CLIENTS];
    for (int i = 0; i < S_CLIENTS; i++) {
        clients[i].number = i;
        clients[i].client = zm_harness_client(harness, endpoint);   //  here: no zsys_init race
        assert_non_null(clients[i].client);
    }
    int started = 0;                            //  no assert until every thread is joined
    while (started < S_CLIENTS
           && pthread_create(&threads[started], NULL, s_client_main, &clients[started]) == 0)
        started++;
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);

    for (int i = 0; i < S_CLIENTS; i++)
        for (size_t j = 0; j < S_PER_CLIENT; j++)
            zmesh_msg_destroy(&clients[i].sent[j]);
    assert_int_equal(started, S_CLIENTS);
    uint64_t served[S_WORKERS] = {0};
    for (int i = 0; i < S_CLIENTS; i++)
        s_assert_client(&clients[i], served);
    print_message("served: w1=%llu w2=%llu w3=%llu\n", (unsigned long long) served[0],
                  (unsigned long long) served[1], (unsigned long long) served[2]);
    assert_int_equal(served[0] + served[1] + served[2], S_CALLS);
    for (int i = 0; i < S_WORKERS; i++)
        assert_true(served[i] > 0);
    s_assert_counters(endpoint);
}

int
main(int argc, char **argv)
{
    zm_harness_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_load_every_call_answered_once_by_all_workers,
                                        zm_harness_setup, zm_harness_teardown),
    };
    return cmocka_run_group_tests_name("integration_load", tests, NULL, NULL);
}
