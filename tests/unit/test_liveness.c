//  test_liveness - unit tests of the heartbeat schedule (broker/liveness.h):
//  peers come out when their check is due and not before, in due order,
//  however many there are; hearing from a peer postpones what it owes
//  without touching the schedule; a peer taken out (from the top, the
//  middle or the end) never comes out again and the rest keep their order.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "liveness.h"

#define S_T0 100000                 //  ms
#define S_MANY 1000

//  A small deterministic generator: the same "random" times on every run.
static uint32_t
s_next(uint32_t *state)
{
    *state = *state * 1103515245u + 12345u;
    return (*state >> 8) & 0xffffff;
}

//  Pops everything due by now; checks the order and that each peer came out
//  once. Returns how many came out.
static size_t
s_drain(zm_liveness_sched_t *sched, int64_t now, int *seen, const zm_liveness_t *peers)
{
    size_t count = 0;
    int64_t last = INT64_MIN;
    zm_liveness_t *peer;
    while ((peer = zm_liveness_sched_pop(sched, now))) {
        assert_null(peer->sched);
        assert_true(peer->check_at <= now);
        assert_true(peer->check_at >= last);
        last = peer->check_at;
        seen[peer - peers]++;
        count++;
    }
    return count;
}

static void
test_liveness_next_is_the_earlier_of_heartbeat_and_expiry(void **state)
{
    (void) state;
    zm_liveness_t peer;
    zm_liveness_init(&peer, 1000, 3, S_T0);
    assert_int_equal(zm_liveness_next(&peer), S_T0 + 1000);     //  a HEARTBEAT first
    peer.last_sent = S_T0 + 2500;                               //  sent a call since
    assert_int_equal(zm_liveness_next(&peer), S_T0 + 3000);     //  now its expiry first
    assert_false(zm_liveness_expired(&peer, S_T0 + 2999));
    assert_true(zm_liveness_expired(&peer, S_T0 + 3000));
    assert_false(zm_liveness_due(&peer, S_T0 + 3499));
    assert_true(zm_liveness_due(&peer, S_T0 + 3500));
}

static void
test_liveness_peer_comes_out_when_due_not_before(void **state)
{
    (void) state;
    zm_liveness_sched_t *sched = zm_liveness_sched_new();
    zm_liveness_t peer;
    int owner;
    zm_liveness_init(&peer, 1000, 3, S_T0);
    assert_int_equal(zm_liveness_sched_next(sched), INT64_MAX);
    zm_liveness_sched_add(sched, &peer, &owner);
    assert_ptr_equal(peer.sched, sched);
    assert_int_equal(zm_liveness_sched_size(sched), 1);
    assert_int_equal(zm_liveness_sched_next(sched), S_T0 + 1000);
    assert_null(zm_liveness_sched_pop(sched, S_T0 + 999));
    assert_ptr_equal(zm_liveness_sched_pop(sched, S_T0 + 1000), &peer);
    assert_ptr_equal(peer.owner, &owner);
    assert_null(peer.sched);
    assert_int_equal(zm_liveness_sched_size(sched), 0);
    assert_null(zm_liveness_sched_pop(sched, S_T0 + 100000));
    zm_liveness_sched_destroy(&sched);
    assert_null(sched);
}

//  The engine's tick in miniature: what is due is checked against the
//  timestamps; a live peer goes back in at its real next check.
static void
test_liveness_heard_peer_is_not_expired(void **state)
{
    (void) state;
    zm_liveness_sched_t *sched = zm_liveness_sched_new();
    zm_liveness_t heard, silent;
    zm_liveness_init(&heard, 1000, 3, S_T0);
    zm_liveness_init(&silent, 1000, 3, S_T0);
    zm_liveness_sched_add(sched, &heard, NULL);
    zm_liveness_sched_add(sched, &silent, NULL);
    int heartbeats[2] = {0, 0};
    int64_t expired_at[2] = {0, 0};
    for (int64_t now = S_T0; now <= S_T0 + 10000; now += 100) {
        heard.last_heard = now;                 //  it talks all the time
        zm_liveness_t *peer;
        while ((peer = zm_liveness_sched_pop(sched, now))) {
            int which = peer == &heard ? 0 : 1;
            if (zm_liveness_expired(peer, now)) {
                expired_at[which] = now;
                continue;
            }
            if (zm_liveness_due(peer, now)) {
                heartbeats[which]++;
                peer->last_sent = now;
            }
            zm_liveness_sched_add(sched, peer, NULL);
        }
    }
    assert_int_equal(expired_at[0], 0);
    assert_ptr_equal(heard.sched, sched);
    assert_int_equal(heartbeats[0], 10);        //  one per second, +1000 to +10000
    assert_int_equal(expired_at[1], S_T0 + 3000);
    assert_null(silent.sched);
    assert_int_equal(heartbeats[1], 2);         //  +1000 and +2000, then dead
    zm_liveness_sched_destroy(&sched);
    assert_null(heard.sched);                   //  the schedule let go of it
}

static void
test_liveness_many_peers_come_out_in_due_order(void **state)
{
    (void) state;
    static zm_liveness_t peers[S_MANY];
    static int seen[S_MANY];
    uint32_t random = 7;
    zm_liveness_sched_t *sched = zm_liveness_sched_new();
    int64_t latest = 0;
    for (int i = 0; i < S_MANY; i++) {
        uint32_t heartbeat_ms = 100 + s_next(&random) % 5000;
        zm_liveness_init(&peers[i], heartbeat_ms, 2 + s_next(&random) % 5,
                         S_T0 + s_next(&random) % 10000);
        peers[i].last_heard -= s_next(&random) % 20000;     //  some nearly dead already
        zm_liveness_sched_add(sched, &peers[i], NULL);
        if (zm_liveness_next(&peers[i]) > latest)
            latest = zm_liveness_next(&peers[i]);
    }
    assert_int_equal(zm_liveness_sched_size(sched), S_MANY);
    //  Drained in steps, as ticks would: each step takes exactly those due.
    size_t total = 0;
    for (int64_t now = S_T0 - 20000; now < latest + 250; now += 250) {
        total += s_drain(sched, now, seen, peers);
        assert_true(zm_liveness_sched_next(sched) > now);
    }
    assert_int_equal(total, S_MANY);
    for (int i = 0; i < S_MANY; i++) {
        assert_int_equal(seen[i], 1);
        assert_int_equal(peers[i].check_at, zm_liveness_next(&peers[i]));
    }
    assert_int_equal(zm_liveness_sched_size(sched), 0);
    zm_liveness_sched_destroy(&sched);
}

static void
test_liveness_removed_peers_never_come_out(void **state)
{
    (void) state;
    static zm_liveness_t peers[S_MANY];
    static int seen[S_MANY];
    uint32_t random = 11;
    zm_liveness_sched_t *sched = zm_liveness_sched_new();
    for (int i = 0; i < S_MANY; i++) {
        zm_liveness_init(&peers[i], 100 + s_next(&random) % 3000, 3, S_T0);
        zm_liveness_sched_add(sched, &peers[i], NULL);
    }
    //  The top, the end, and every third one in between.
    zm_liveness_t *top = zm_liveness_sched_pop(sched, INT64_MAX);
    zm_liveness_sched_add(sched, top, NULL);
    zm_liveness_sched_remove(top);
    size_t removed = 1;
    for (int i = 0; i < S_MANY; i++) {
        if (&peers[i] == top || i % 3 != 0)
            continue;
        zm_liveness_sched_remove(&peers[i]);
        assert_null(peers[i].sched);
        zm_liveness_sched_remove(&peers[i]);        //  twice: nothing happens
        removed++;
    }
    assert_int_equal(zm_liveness_sched_size(sched), S_MANY - removed);
    size_t total = s_drain(sched, INT64_MAX, seen, peers);
    assert_int_equal(total, S_MANY - removed);
    for (int i = 0; i < S_MANY; i++)
        assert_int_equal(seen[i], (&peers[i] == top || i % 3 == 0) ? 0 : 1);
    zm_liveness_sched_destroy(&sched);
}

static void
test_liveness_unscheduled_peer_is_left_alone(void **state)
{
    (void) state;
    zm_liveness_t peer;
    zm_liveness_init(&peer, 1000, 3, S_T0);
    assert_null(peer.sched);
    zm_liveness_sched_remove(&peer);
    assert_null(peer.sched);
    zm_liveness_sched_t *sched = NULL;
    zm_liveness_sched_destroy(&sched);              //  NULL: nothing to do
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_liveness_next_is_the_earlier_of_heartbeat_and_expiry),
        cmocka_unit_test(test_liveness_peer_comes_out_when_due_not_before),
        cmocka_unit_test(test_liveness_heard_peer_is_not_expired),
        cmocka_unit_test(test_liveness_many_peers_come_out_in_due_order),
        cmocka_unit_test(test_liveness_removed_peers_never_come_out),
        cmocka_unit_test(test_liveness_unscheduled_peer_is_left_alone),
    };
    return cmocka_run_group_tests_name("liveness", tests, NULL, NULL);
}
