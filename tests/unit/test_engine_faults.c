//  test_engine_faults.c - unit tests of how the broker's routing logic
//  (broker/engine.c) copes with peers that fail or misbehave: heartbeats and
//  worker expiry, a worker's DISCONNECT, protocol violations that end a
//  worker's session, messages from peers that are not registered,
//  malformed input from clients (answered, and the next good call still
//  works), refused registrations, send failures the transport reports, and
//  peers kicked for sending garbage. Each test feeds fabricated ROUTER
//  messages with an explicit `now` and pops every outbox message
//  (engine_fixture.h): no sockets, no sleeps, no clock.

#include <stdio.h>
#include <string.h>

#include "engine_fixture.h"

//  ---------------------------------------------------------------------------
//  Heartbeats and expiry

static void
test_engine_heartbeats_idle_worker(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready(engine, "W1", "echo", 1, ZT_T0);
    zm_engine_on_tick(engine, ZT_T0 + ZT_HEARTBEAT_MS - 1);
    zt_expect_empty(engine);
    zm_engine_on_tick(engine, ZT_T0 + ZT_HEARTBEAT_MS);
    zt_expect_heartbeat(engine, "W1");
    zt_expect_empty(engine);
    zm_engine_on_tick(engine, ZT_T0 + ZT_HEARTBEAT_MS + 500);   //  not more often
    zt_expect_empty(engine);
    zt_heartbeat(engine, "W1", ZT_T0 + 1600);   //  answering is no reason to send more
    zt_expect_empty(engine);
    zm_engine_on_tick(engine, ZT_T0 + 2 * ZT_HEARTBEAT_MS);
    zt_expect_heartbeat(engine, "W1");
    zt_expect_empty(engine);
    ZT_COUNTERS(0);
}

static void
test_engine_request_postpones_heartbeat(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready(engine, "W1", "echo", 1, ZT_T0);
    zt_call(engine, "C1", 1, "echo", 0, ZT_BODY, ZT_T0 + 600);
    zt_expect_request(engine, "W1", "echo", 0, ZT_BODY);
    zm_engine_on_tick(engine, ZT_T0 + ZT_HEARTBEAT_MS);          //  sent 400 ms ago
    zt_expect_empty(engine);
    zm_engine_on_tick(engine, ZT_T0 + 600 + ZT_HEARTBEAT_MS);
    zt_expect_heartbeat(engine, "W1");
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1);
}

static void
test_engine_worker_traffic_postpones_expiry(void **state)
{
    zm_engine_t *engine = *state;
    const int64_t dead_after = ZT_HEARTBEAT_MS * ZT_LIVENESS;
    zt_ready(engine, "W1", "echo", 1, ZT_T0);
    zt_call(engine, "C1", 1, "echo", 0, ZT_BODY, ZT_T0);
    uint64_t ticket = zt_expect_request(engine, "W1", "echo", 0, ZT_BODY);
    zt_heartbeat(engine, "W1", ZT_T0 + 2000);
    zm_engine_on_tick(engine, ZT_T0 + dead_after);      //  alive: heard at +2000
    zt_expect_heartbeat(engine, "W1");
    zt_answer(engine, "W1", ticket, ZM_STATUS_OK, ZT_ANSWER, ZT_T0 + 4000);
    zt_expect_reply(engine, "C1", 1, ZM_STATUS_OK, ZT_ANSWER);
    zm_engine_on_tick(engine, ZT_T0 + 2000 + dead_after);       //  alive: heard at +4000
    zt_expect_heartbeat(engine, "W1");
    zm_engine_on_tick(engine, ZT_T0 + 4000 + dead_after - 1);
    zt_expect_heartbeat(engine, "W1");
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1, .replies = 1);

    zm_engine_on_tick(engine, ZT_T0 + 4000 + dead_after);
    zt_expect_empty(engine);                    //  nothing is sent to a dead worker
    ZT_COUNTERS(.calls = 1, .replies = 1, .workers_expired = 1);
    zt_heartbeat(engine, "W1", ZT_T0 + 7001);   //  its session is over
    zt_expect_disconnect(engine, "W1", ZM_STATUS_MALFORMED, "not registered");
    zt_expect_empty(engine);
}

static void
test_engine_expired_worker_loses_inflight_calls(void **state)
{
    zm_engine_t *engine = *state;
    const int64_t dead_after = ZT_HEARTBEAT_MS * ZT_LIVENESS;
    zt_ready(engine, "W1", "echo", 2, ZT_T0);
    zt_call(engine, "C1", 1, "echo", 0, zt_fixint(1), ZT_T0 + 1);
    zt_expect_request(engine, "W1", "echo", 0, zt_fixint(1));
    zt_call(engine, "C2", 2, "echo", 0, zt_fixint(2), ZT_T0 + 2);
    zt_expect_request(engine, "W1", "echo", 0, zt_fixint(2));
    zt_call(engine, "C3", 3, "echo", 0, zt_fixint(3), ZT_T0 + 3);
    zt_expect_empty(engine);

    zm_engine_on_tick(engine, ZT_T0 + dead_after - 1);
    zt_expect_heartbeat(engine, "W1");
    zt_expect_empty(engine);
    zm_engine_on_tick(engine, ZT_T0 + dead_after);
    zt_expect_error(engine, "C1", 1, ZM_STATUS_WORKER_LOST, NULL);
    zt_expect_error(engine, "C2", 2, ZM_STATUS_WORKER_LOST, NULL);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 3, .worker_lost = 2, .workers_expired = 1);

    //  The queued call was not the worker's: it waits for the next one.
    zt_ready(engine, "W2", "echo", 1, ZT_T0 + dead_after + 100);
    zt_expect_request(engine, "W2", "echo", 0, zt_fixint(3));
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 3, .worker_lost = 2, .workers_expired = 1);
}

//  ---------------------------------------------------------------------------
//  Worker DISCONNECT and protocol violations

//  The broker's view of one worker in the many-workers test: what it sent
//  and heard, as ZMP.md 10.1 says the broker must time its HEARTBEATs and
//  its verdicts.
typedef struct {
    char name[8];               //  routing id
    int64_t ready_at;           //  ms: its READY (and its session's start)
    int64_t heard;              //  ms: last message from it
    int64_t sent;               //  ms: last message to it
    bool live;                  //  registered and not dead or gone
    bool talks;                 //  sends HEARTBEAT every 700 ms; else silent
    int heartbeats;             //  HEARTBEATs the broker sent it
    int64_t expired_at;         //  ms: the tick that found it dead, 0 if none
} s_peer_t;

#define S_PEERS 40

//  Pops the outbox: each message must be a HEARTBEAT to a live peer that is
//  due (sent nothing for ZT_HEARTBEAT_MS) and no due peer may be missing,
//  in whatever order the engine sends them.
static void
s_expect_heartbeats_due(zm_engine_t *engine, s_peer_t *peers, int64_t now)
{
    bool got[S_PEERS] = {false};
    while (zlistx_size(engine->outbox) > 0) {
        const zt_out_t *out = zt_pop(engine);
        zt_assert_cmd(out, ZM_CMD_HEARTBEAT);
        int which = -1;
        for (int i = 0; i < S_PEERS && which < 0; i++) {
            char hex[ZT_HEX_MAX];
            for (size_t c = 0; c < strlen(peers[i].name); c++)
                snprintf(hex + 2 * c, 3, "%02x", (unsigned char) peers[i].name[c]);
            if (strcmp(out->peer, hex) == 0)
                which = i;
        }
        if (which < 0)
            fail_msg("HEARTBEAT to %s, no such peer", out->peer);
        if (got[which])
            fail_msg("two HEARTBEATs to %s at +%" PRId64, peers[which].name, now - ZT_T0);
        got[which] = true;
    }
    for (int i = 0; i < S_PEERS; i++) {
        s_peer_t *peer = &peers[i];
        bool due = peer->live && now - peer->sent >= ZT_HEARTBEAT_MS;
        if (got[i] != due)
            fail_msg("%s at +%" PRId64 ": HEARTBEAT %s, expected %s (ready +%" PRId64
                     ", sent +%" PRId64 ")",
                     peer->name, now - ZT_T0, got[i] ? "sent" : "not sent", due ? "one" : "none",
                     peer->ready_at - ZT_T0, peer->sent - ZT_T0);
        if (due) {
            peer->sent = now;
            peer->heartbeats++;
        }
    }
}

//  Forty workers registered at different times, ticked every 100 ms for
//  eight seconds: each gets a HEARTBEAT at the first tick at least an
//  interval after the last thing it was sent, never two in an interval;
//  the silent ones die at the first tick at least liveness intervals after
//  their READY and the talking ones never do; those that left, or whose
//  connection failed, get nothing more, and one that comes back under the
//  same routing id starts afresh.
static void
test_engine_heartbeats_many_workers_when_due(void **state)
{
    zm_engine_t *engine = *state;
    const int64_t dead_after = ZT_HEARTBEAT_MS * ZT_LIVENESS;
    s_peer_t peers[S_PEERS];
    memset(peers, 0, sizeof peers);
    for (int i = 0; i < S_PEERS; i++) {
        snprintf(peers[i].name, sizeof peers[i].name, "W%02d", i);
        peers[i].ready_at = ZT_T0 + i * 37;
        peers[i].talks = i % 2 == 0;
    }
    s_peer_t *leaver = &peers[4], *unreachable = &peers[6], *returner = &peers[8];
    uint64_t expired = 0, closed = 0;
    for (int64_t now = ZT_T0; now <= ZT_T0 + 8000; now++) {
        for (int i = 0; i < S_PEERS; i++) {
            s_peer_t *peer = &peers[i];
            if (now == peer->ready_at) {
                zt_ready(engine, peer->name, "echo", 1, now);
                peer->heard = peer->sent = now;
                peer->live = true;
            }
            else if (peer->live && peer->talks && now - peer->heard >= 700) {
                zt_heartbeat(engine, peer->name, now);
                peer->heard = now;
            }
        }
        if (now == ZT_T0 + 2500) {
            zt_leave(engine, leaver->name, now);
            leaver->live = false;
        }
        if (now == ZT_T0 + 3330) {
            zt_send_failed(engine, unreachable->name, false, now);
            unreachable->live = false;
            closed++;
        }
        if (now == ZT_T0 + 4000) {
            zt_leave(engine, returner->name, now);
            returner->live = false;
            returner->ready_at = now + 1250;   //  back, a new session, off the tick grid
        }
        zt_expect_empty(engine);                //  READY and HEARTBEAT get no answer
        if ((now - ZT_T0) % 100 != 0)
            continue;
        zm_engine_on_tick(engine, now);
        for (int i = 0; i < S_PEERS; i++) {
            s_peer_t *peer = &peers[i];
            if (peer->live && now - peer->heard >= dead_after) {
                peer->live = false;
                peer->expired_at = now;
                expired++;
            }
        }
        s_expect_heartbeats_due(engine, peers, now);
        ZT_COUNTERS(.workers_expired = expired, .workers_unreachable = closed);
    }
    for (int i = 0; i < S_PEERS; i++) {
        s_peer_t *peer = &peers[i];
        if (!peer->talks) {
            //  First tick at or after READY + 3000: READY is at +37 i ms.
            int64_t due = peer->ready_at + dead_after;
            assert_int_equal(peer->expired_at, ZT_T0 + (due - ZT_T0 + 99) / 100 * 100);
            assert_int_equal(peer->heartbeats, ZT_LIVENESS - 1);
        }
        else
            assert_int_equal(peer->expired_at, 0);
    }
    assert_int_equal(expired, S_PEERS / 2);
    assert_true(peers[0].heartbeats == 8);
    assert_true(leaver->heartbeats == 2 && unreachable->heartbeats == 3);
    assert_true(returner->live && returner->heartbeats == 3 + 2);
    //  Only the live ones are left in the schedule: none that died or left.
    size_t live = 0;
    for (int i = 0; i < S_PEERS; i++)
        live += peers[i].live;
    assert_int_equal(live, S_PEERS / 2 - 2);
    assert_int_equal(zm_liveness_sched_size(engine->worker_beats), live);
}

//  However a session ends, the worker leaves the heartbeat schedule with
//  it: nothing is sent to it and it is not found dead later (under ASan, a
//  freed worker left in the schedule would be read by the next tick).
static void
test_engine_ended_sessions_leave_schedule(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready(engine, "W1", "echo", 1, ZT_T0);
    zt_ready(engine, "W2", "echo", 1, ZT_T0);
    zt_ready(engine, "W3", "echo", 1, ZT_T0);
    zt_ready(engine, "W4", "echo", 1, ZT_T0);
    assert_int_equal(zm_liveness_sched_size(engine->worker_beats), 4);
    zt_call(engine, "W1", 1, "echo", 0, ZT_BODY, ZT_T0 + 10);     //  a worker may not CALL
    zt_expect_disconnect(engine, "W1", ZM_STATUS_MALFORMED, NULL);
    zt_leave(engine, "W2", ZT_T0 + 20);
    zm_engine_on_gone(engine, "5733", ZT_T0 + 30);                 //  W3's connection
    zt_send_failed(engine, "W4", false, ZT_T0 + 40);
    zt_expect_empty(engine);
    assert_int_equal(zm_liveness_sched_size(engine->worker_beats), 0);
    for (int64_t now = ZT_T0 + 100; now <= ZT_T0 + 10000; now += 100) {
        zm_engine_on_tick(engine, now);
        zt_expect_empty(engine);
    }
    ZT_COUNTERS(.workers_kicked = 1, .sessions_closed = 1, .workers_unreachable = 1);
}

static void
test_engine_worker_disconnect_loses_inflight_calls(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready(engine, "W1", "echo", 2, ZT_T0);
    zt_call(engine, "C1", 1, "echo", 0, zt_fixint(1), ZT_T0 + 1);
    zt_expect_request(engine, "W1", "echo", 0, zt_fixint(1));
    zt_call(engine, "C2", 2, "echo", 0, zt_fixint(2), ZT_T0 + 2);
    zt_expect_request(engine, "W1", "echo", 0, zt_fixint(2));

    zt_leave(engine, "W1", ZT_T0 + 10);
    zt_expect_error(engine, "C1", 1, ZM_STATUS_WORKER_LOST, "lost");
    zt_expect_error(engine, "C2", 2, ZM_STATUS_WORKER_LOST, "lost");
    zt_expect_empty(engine);                    //  nothing back to the worker
    ZT_COUNTERS(.calls = 2, .worker_lost = 2);

    zt_call(engine, "C1", 3, "echo", 0, zt_fixint(3), ZT_T0 + 20);
    zt_expect_empty(engine);                    //  queued: no worker left
    zt_leave(engine, "W1", ZT_T0 + 30);         //  a second DISCONNECT: no session, no answer
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 3, .worker_lost = 2);
}

//  After W1 broke the protocol: it got DISCONNECT status and is gone, C1's
//  call got 502, and W2, C2 and new calls carry on as if nothing happened.
static void
s_assert_w1_kicked(zm_engine_t *engine, uint32_t status, uint64_t t2)
{
    zt_expect_disconnect(engine, "W1", status, NULL);
    zt_expect_error(engine, "C1", 1, ZM_STATUS_WORKER_LOST, NULL);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 2, .worker_lost = 1, .workers_kicked = 1);

    zt_answer(engine, "W2", t2, ZM_STATUS_OK, zt_fixint(2), ZT_T0 + 200);
    zt_expect_reply(engine, "C2", 2, ZM_STATUS_OK, zt_fixint(2));
    zt_call(engine, "C3", 3, "echo", 0, zt_fixint(3), ZT_T0 + 201);
    uint64_t t3 = zt_expect_request(engine, "W2", "echo", 0, zt_fixint(3));
    zt_answer(engine, "W2", t3, ZM_STATUS_OK, zt_fixint(3), ZT_T0 + 202);
    zt_expect_reply(engine, "C3", 3, ZM_STATUS_OK, zt_fixint(3));
    zt_heartbeat(engine, "W1", ZT_T0 + 203);
    zt_expect_disconnect(engine, "W1", ZM_STATUS_MALFORMED, "not registered");
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 3, .replies = 2, .worker_lost = 1, .workers_kicked = 1);
}

static void
test_engine_kicks_worker_sending_call(void **state)
{
    zm_engine_t *engine = *state;
    uint64_t t1, t2;
    zt_two_busy_workers(engine, &t1, &t2);
    zt_call(engine, "W1", 50, "echo", 0, ZT_BODY, ZT_T0 + 100);  //  neither run nor queued
    s_assert_w1_kicked(engine, ZM_STATUS_MALFORMED, t2);
}

static void
test_engine_kicks_worker_sending_second_ready(void **state)
{
    zm_engine_t *engine = *state;
    uint64_t t1, t2;
    zt_two_busy_workers(engine, &t1, &t2);
    zt_ready(engine, "W1", "echo", 1, ZT_T0 + 100);
    s_assert_w1_kicked(engine, ZM_STATUS_MALFORMED, t2);
}

static void
test_engine_kicks_worker_sending_request(void **state)
{
    zm_engine_t *engine = *state;
    uint64_t t1, t2;
    zt_two_busy_workers(engine, &t1, &t2);
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = ZM_CMD_REQUEST;
    command.id = t1;
    snprintf(command.service, sizeof command.service, "echo");
    zt_feed(engine, "W1", &command, ZT_T0 + 100);
    s_assert_w1_kicked(engine, ZM_STATUS_MALFORMED, t2);
}

static void
test_engine_kicks_worker_replying_404(void **state)
{
    zm_engine_t *engine = *state;
    uint64_t t1, t2;
    zt_two_busy_workers(engine, &t1, &t2);
    zt_answer(engine, "W1", t1, ZM_STATUS_NO_SERVICE, ZT_BYTES("\xa2no"), ZT_T0 + 100);
    s_assert_w1_kicked(engine, ZM_STATUS_MALFORMED, t2);
}

static void
test_engine_kicks_worker_sending_malformed_header(void **state)
{
    zm_engine_t *engine = *state;
    uint64_t t1, t2;
    zt_two_busy_workers(engine, &t1, &t2);
    zt_bytes_t frames[] = {ZT_EMPTY, ZT_BYTES("\x92\xa4ZMP1\xa9HEARTBEAT\x00")};  //  bytes after
    zt_feed_raw(engine, "W1", frames, 2, ZT_T0 + 100);
    s_assert_w1_kicked(engine, ZM_STATUS_MALFORMED, t2);
}

static void
test_engine_kicks_worker_with_bad_version(void **state)
{
    zm_engine_t *engine = *state;
    uint64_t t1, t2;
    zt_two_busy_workers(engine, &t1, &t2);
    zt_bytes_t frames[] = {ZT_EMPTY, ZT_BYTES("\x92\xa4ZMP2\xa9HEARTBEAT")};
    zt_feed_raw(engine, "W1", frames, 2, ZT_T0 + 100);
    s_assert_w1_kicked(engine, ZM_STATUS_BAD_VERSION, t2);
}

static void
test_engine_kicks_worker_sending_oversized_reply(void **state)
{
    zm_engine_t *engine = *state;
    uint64_t t1, t2;
    zt_two_busy_workers(engine, &t1, &t2);
    char big[2 + 100];                          //  str 8 of 100 bytes: over ZT_MAX_BODY
    big[0] = (char) 0xd9;
    big[1] = 100;
    memset(big + 2, 'a', 100);
    zt_answer(engine, "W1", t1, ZM_STATUS_OK, (zt_bytes_t){big, sizeof big}, ZT_T0 + 100);
    s_assert_w1_kicked(engine, ZM_STATUS_TOO_BIG, t2);
}

//  ---------------------------------------------------------------------------
//  Peers that are not registered workers

static void
test_engine_disconnects_unregistered_heartbeat(void **state)
{
    zm_engine_t *engine = *state;
    zt_heartbeat(engine, "X1", ZT_T0);
    zt_expect_disconnect(engine, "X1", ZM_STATUS_MALFORMED, "not registered");
    zt_expect_empty(engine);
    ZT_COUNTERS(0);
}

static void
test_engine_disconnects_unregistered_reply(void **state)
{
    zm_engine_t *engine = *state;
    zt_answer(engine, "X1", 1, ZM_STATUS_OK, ZT_ANSWER, ZT_T0);
    zt_expect_disconnect(engine, "X1", ZM_STATUS_MALFORMED, "not registered");
    zt_expect_empty(engine);
    ZT_COUNTERS(.dropped_late_reply = 1);
}

static void
test_engine_ignores_unregistered_disconnect(void **state)
{
    zm_engine_t *engine = *state;
    zt_leave(engine, "X1", ZT_T0);
    zt_expect_empty(engine);
    ZT_COUNTERS(0);
}

static void
test_engine_rejects_request_from_client(void **state)
{
    zm_engine_t *engine = *state;
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = ZM_CMD_REQUEST;
    command.id = 12;
    snprintf(command.service, sizeof command.service, "echo");
    zt_feed(engine, "C1", &command, ZT_T0);
    zt_expect_error(engine, "C1", 12, ZM_STATUS_MALFORMED, NULL);
    zt_expect_empty(engine);
    ZT_COUNTERS(.rejected_malformed = 1);
}

//  ---------------------------------------------------------------------------
//  Malformed input from clients: answered, then the next good call works

//  Proves that C1 is still served: a call dispatched to a fresh worker.
static void
s_assert_client_served(zm_engine_t *engine, int64_t now)
{
    zt_ready(engine, "WOK", "ok", 1, now);
    zt_call(engine, "C1", 100, "ok", 0, ZT_BODY, now);
    uint64_t ticket = zt_expect_request(engine, "WOK", "ok", 0, ZT_BODY);
    zt_answer(engine, "WOK", ticket, ZM_STATUS_OK, ZT_ANSWER, now);
    zt_expect_reply(engine, "C1", 100, ZM_STATUS_OK, ZT_ANSWER);
    zt_expect_empty(engine);
}

static void
test_engine_rejects_header_that_is_not_an_array(void **state)
{
    zm_engine_t *engine = *state;
    zt_bytes_t frames[] = {ZT_EMPTY, ZT_BYTES("\xc0"), ZT_BODY};
    zt_feed_raw(engine, "C1", frames, 3, ZT_T0);
    zt_expect_error(engine, "C1", 0, ZM_STATUS_MALFORMED, "array");
    zt_expect_empty(engine);
    ZT_COUNTERS(.rejected_malformed = 1);
    s_assert_client_served(engine, ZT_T0 + 1);
    ZT_COUNTERS(.calls = 1, .replies = 1, .rejected_malformed = 1);
}

static void
test_engine_rejects_missing_delimiter(void **state)
{
    zm_engine_t *engine = *state;
    zt_bytes_t frames[] = {ZT_BYTES("\x94\xa4ZMP1\xa4" "CALL\x05\xa4" "echo"), ZT_BODY};
    zt_feed_raw(engine, "C1", frames, 2, ZT_T0);
    zt_expect_error(engine, "C1", 0, ZM_STATUS_MALFORMED, "delimiter");
    zt_expect_empty(engine);
    zt_feed_raw(engine, "C1", NULL, 0, ZT_T0);  //  the routing frame alone
    zt_expect_error(engine, "C1", 0, ZM_STATUS_MALFORMED, NULL);
    zt_expect_empty(engine);
    ZT_COUNTERS(.rejected_malformed = 2);
    s_assert_client_served(engine, ZT_T0 + 1);
}

static void
test_engine_rejects_bad_field_with_request_id(void **state)
{
    zm_engine_t *engine = *state;
    zt_bytes_t space[] = {ZT_EMPTY, ZT_BYTES("\x94\xa4ZMP1\xa4" "CALL\x2a\xa4" "ec o"), ZT_BODY};
    zt_feed_raw(engine, "C1", space, 3, ZT_T0);
    zt_expect_error(engine, "C1", 42, ZM_STATUS_MALFORMED, "service");
    zt_bytes_t no_body[] = {ZT_EMPTY, ZT_BYTES("\x94\xa4ZMP1\xa4" "CALL\x2b\xa4" "echo")};
    zt_feed_raw(engine, "C1", no_body, 2, ZT_T0);
    zt_expect_error(engine, "C1", 43, ZM_STATUS_MALFORMED, "frames");
    zt_bytes_t cut_body[] = {ZT_EMPTY, ZT_BYTES("\x94\xa4ZMP1\xa4" "CALL\x2c\xa4" "echo"),
                            ZT_BYTES("\x92\x01")};
    zt_feed_raw(engine, "C1", cut_body, 3, ZT_T0);
    zt_expect_error(engine, "C1", 44, ZM_STATUS_MALFORMED, "body");
    zt_expect_empty(engine);
    ZT_COUNTERS(.rejected_malformed = 3);
    s_assert_client_served(engine, ZT_T0 + 1);
}

static void
test_engine_rejects_bad_version(void **state)
{
    zm_engine_t *engine = *state;
    zt_bytes_t frames[] = {ZT_EMPTY, ZT_BYTES("\x94\xa4ZMP2\xa4" "CALL\x05\xa4" "echo"), ZT_BODY};
    zt_feed_raw(engine, "C1", frames, 3, ZT_T0);
    zt_expect_error(engine, "C1", 0, ZM_STATUS_BAD_VERSION, "version");
    zt_expect_empty(engine);
    ZT_COUNTERS(.rejected_bad_version = 1);
    s_assert_client_served(engine, ZT_T0 + 1);
}

static void
test_engine_rejects_oversized_body(void **state)
{
    zm_engine_t *engine = *state;
    char big[3 + ZT_MAX_BODY];                  //  str 8 of ZT_MAX_BODY + 1 bytes
    big[0] = (char) 0xd9;
    big[1] = (char) (ZT_MAX_BODY + 1);
    memset(big + 2, 'b', ZT_MAX_BODY + 1);
    zt_call(engine, "C1", 6, "echo", 0, (zt_bytes_t){big, sizeof big}, ZT_T0);
    zt_expect_error(engine, "C1", 6, ZM_STATUS_TOO_BIG, "size");
    zt_expect_empty(engine);
    ZT_COUNTERS(.rejected_too_big = 1);
    s_assert_client_served(engine, ZT_T0 + 1);
}

static void
test_engine_rejects_oversized_header(void **state)
{
    zm_engine_t *engine = *state;
    zt_bytes_t head = ZT_BYTES("\x94\xa4ZMP1\xa4" "CALL\x01\xda\x01\xf8");  //  name: str 16
    char header[ZM_HEADER_MAX + 32];            //  ["ZMP1", "CALL", 1, <504 bytes>]
    memcpy(header, head.data, head.size);
    memset(header + head.size, 'n', 504);
    zt_bytes_t frames[] = {ZT_EMPTY, {header, head.size + 504}, ZT_BODY};
    zt_feed_raw(engine, "C1", frames, 3, ZT_T0);
    zt_expect_error(engine, "C1", 0, ZM_STATUS_TOO_BIG, "512");
    zt_expect_empty(engine);
    ZT_COUNTERS(.rejected_too_big = 1);
    s_assert_client_served(engine, ZT_T0 + 1);
}

//  ---------------------------------------------------------------------------
//  Refused registrations: a would-be worker reads DISCONNECT, never REPLY

#define S_READY_ECHO "\x96\xa4ZMP1\xa5READY\xa4" "echo"     //  then slots, heartbeat, liveness

static void
test_engine_disconnects_malformed_ready(void **state)
{
    zm_engine_t *engine = *state;
    zt_bytes_t zero_slots[] = {ZT_EMPTY,
                               ZT_BYTES(S_READY_ECHO "\x00\xcd\x03\xe8\x03")};     //  0 slots
    zt_feed_raw(engine, "W1", zero_slots, 2, ZT_T0);
    zt_expect_disconnect(engine, "W1", ZM_STATUS_MALFORMED, "slots");
    zt_bytes_t with_body[] = {ZT_EMPTY, ZT_BYTES(S_READY_ECHO "\x01\xcd\x03\xe8\x03"), ZT_BODY};
    zt_feed_raw(engine, "W1", with_body, 3, ZT_T0);
    zt_expect_disconnect(engine, "W1", ZM_STATUS_MALFORMED, "frames");
    zt_expect_empty(engine);
    zt_call(engine, "C1", 1, "echo", 0, ZT_BODY, ZT_T0 + 1);    //  W1 did not register
    zt_expect_empty(engine);
    zt_ready(engine, "W1", "echo", 1, ZT_T0 + 2);               //  a good READY still works
    zt_expect_request(engine, "W1", "echo", 0, ZT_BODY);
    zt_expect_empty(engine);
    //  ZMP.md 7.1: a refused READY counts rejected_malformed; no worker was kicked.
    ZT_COUNTERS(.calls = 1, .rejected_malformed = 2);
}

static void
test_engine_disconnects_reserved_ready(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready(engine, "W1", "zmesh.x", 1, ZT_T0);
    zt_expect_disconnect(engine, "W1", ZM_STATUS_MALFORMED, "reserved");
    zt_expect_empty(engine);
    const zt_status_t *status = zt_status_fetch(engine, ZT_T0 + 1);
    assert_int_equal(zt_status_count(status, "workers"), 0);
    assert_int_equal(zt_status_count(status, "services"), 0);
    zt_expect_empty(engine);
    //  ZMP.md 7.1: a refused READY counts rejected_malformed; no worker was kicked.
    ZT_COUNTERS(.calls = 1, .replies = 1, .rejected_malformed = 1);
}

//  ZMP.md 7.1 and 14: a READY with another version or an oversized header is
//  answered DISCONNECT 505 / 413 like any other refused READY.
static void
test_engine_disconnects_ready_with_bad_version(void **state)
{
    zm_engine_t *engine = *state;
    zt_bytes_t frames[] = {ZT_EMPTY,
                           ZT_BYTES("\x96\xa4ZMP2\xa5READY\xa4" "echo\x01\xcd\x03\xe8\x03")};
    zt_feed_raw(engine, "W1", frames, 2, ZT_T0);
    zt_expect_disconnect(engine, "W1", ZM_STATUS_BAD_VERSION, NULL);
    zt_expect_empty(engine);
    ZT_COUNTERS(.rejected_bad_version = 1);
}

static void
test_engine_disconnects_oversized_ready(void **state)
{
    zm_engine_t *engine = *state;
    zt_bytes_t head = ZT_BYTES("\x96\xa4ZMP1\xa5READY\xda\x01\xf8");   //  name: str 16
    zt_bytes_t tail = ZT_BYTES("\x01\xcd\x03\xe8\x03");                //  1, 1000, 3
    char header[ZM_HEADER_MAX + 32];            //  READY with a 504-byte name
    memcpy(header, head.data, head.size);
    memset(header + head.size, 'n', 504);
    memcpy(header + head.size + 504, tail.data, tail.size);
    zt_bytes_t frames[] = {ZT_EMPTY, {header, head.size + 504 + tail.size}};
    zt_feed_raw(engine, "W1", frames, 2, ZT_T0);
    zt_expect_disconnect(engine, "W1", ZM_STATUS_TOO_BIG, NULL);
    zt_expect_empty(engine);
    ZT_COUNTERS(.rejected_too_big = 1);
}

//  ---------------------------------------------------------------------------
//  Send failures reported by the transport

static void
test_engine_send_failure_retires_worker(void **state)
{
    zm_engine_t *engine = *state;
    uint64_t t1, t2;
    zt_two_busy_workers(engine, &t1, &t2);
    zt_send_failed(engine, "W1", false, ZT_T0 + 10);
    zt_expect_error(engine, "C1", 1, ZM_STATUS_WORKER_LOST, NULL);
    zt_expect_empty(engine);                    //  nothing more to a peer that is gone
    ZT_COUNTERS(.calls = 2, .worker_lost = 1, .workers_unreachable = 1);

    zt_send_failed(engine, "W2", true, ZT_T0 + 11);
    zt_expect_error(engine, "C2", 2, ZM_STATUS_WORKER_LOST, NULL);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 2, .worker_lost = 2, .workers_unreachable = 2);
    zt_call(engine, "C1", 3, "echo", 0, ZT_BODY, ZT_T0 + 12);   //  no worker left: queued
    zt_expect_empty(engine);
}

static void
test_engine_send_failure_to_unknown_peer_is_counted(void **state)
{
    zm_engine_t *engine = *state;
    zt_send_failed(engine, "C1", false, ZT_T0);
    zt_expect_empty(engine);
    ZT_COUNTERS(.dropped_unroutable = 1);
    zt_send_failed(engine, "C1", true, ZT_T0);
    zt_expect_empty(engine);
    ZT_COUNTERS(.dropped_unroutable = 1, .dropped_peer_full = 1);
}

//  ---------------------------------------------------------------------------
//  Peers that keep sending garbage

//  Sends one message the codec refuses (0xc1 is never valid msgpack).
static void
s_garbage(zm_engine_t *engine, const char *peer, int64_t now)
{
    const zt_bytes_t frames[] = {ZT_EMPTY, ZT_BYTES("\xc1")};
    zt_feed_raw(engine, peer, frames, 2, now);
    zt_expect_error(engine, peer, 0, ZM_STATUS_MALFORMED, NULL);
}

static void
test_engine_kicks_peer_after_max_garbage(void **state)
{
    zm_engine_t *engine = *state;
    for (uint32_t i = 1; i < 16; i++) {
        s_garbage(engine, "C1", ZT_T0 + i);
        assert_false(zm_engine_take_kick(engine));
    }
    s_garbage(engine, "C1", ZT_T0 + 16);                //  the 16th: answered, then kicked
    assert_true(zm_engine_take_kick(engine));
    assert_false(zm_engine_take_kick(engine));          //  taking it clears it
    ZT_COUNTERS(.rejected_malformed = 16, .peers_kicked = 1);
    const zt_status_t *status = zt_status_fetch(engine, ZT_T0 + 17);  //  others never notice
    assert_int_equal(zt_status_count(status, "services"), 0);
    assert_false(zm_engine_take_kick(engine));
}

static void
test_engine_garbage_window_starts_again(void **state)
{
    zm_engine_t *engine = *state;
    for (uint32_t i = 0; i < 15; i++)
        s_garbage(engine, "C1", ZT_T0 + i);
    //  Ten seconds on, the count starts again: 15 more are still not a kick.
    for (uint32_t i = 0; i < 15; i++) {
        s_garbage(engine, "C1", ZT_T0 + 10000 + i);
        assert_false(zm_engine_take_kick(engine));
    }
    zm_engine_on_tick(engine, ZT_T0 + 20100);           //  the entry is forgotten
    assert_int_equal(zhashx_size(engine->garbage), 0);
    ZT_COUNTERS(.rejected_malformed = 30);
}

static void
test_engine_garbage_counts_per_peer(void **state)
{
    zm_engine_t *engine = *state;
    for (uint32_t i = 0; i < 15; i++) {
        s_garbage(engine, "C1", ZT_T0 + i);
        s_garbage(engine, "C2", ZT_T0 + i);
    }
    assert_false(zm_engine_take_kick(engine));
    s_garbage(engine, "C2", ZT_T0 + 20);
    assert_true(zm_engine_take_kick(engine));
    ZT_COUNTERS(.rejected_malformed = 31, .peers_kicked = 1);
}

static void
test_engine_max_garbage_zero_never_kicks(void **state)
{
    zm_engine_t *engine = *state;
    engine->config.max_garbage = 0;
    for (uint32_t i = 0; i < 50; i++) {
        s_garbage(engine, "C1", ZT_T0 + i);
        assert_false(zm_engine_take_kick(engine));
    }
    ZT_COUNTERS(.rejected_malformed = 50);
}

int
main(void)
{
    zsys_set_logstream(NULL);                   //  the engine's logs are not under test
#define S_TEST(name) cmocka_unit_test_setup_teardown(name, zt_setup, zt_teardown)
    const struct CMUnitTest tests[] = {
        S_TEST(test_engine_heartbeats_idle_worker),
        S_TEST(test_engine_request_postpones_heartbeat),
        S_TEST(test_engine_worker_traffic_postpones_expiry),
        S_TEST(test_engine_expired_worker_loses_inflight_calls),
        S_TEST(test_engine_heartbeats_many_workers_when_due),
        S_TEST(test_engine_ended_sessions_leave_schedule),
        S_TEST(test_engine_worker_disconnect_loses_inflight_calls),
        S_TEST(test_engine_kicks_worker_sending_call),
        S_TEST(test_engine_kicks_worker_sending_second_ready),
        S_TEST(test_engine_kicks_worker_sending_request),
        S_TEST(test_engine_kicks_worker_replying_404),
        S_TEST(test_engine_kicks_worker_sending_malformed_header),
        S_TEST(test_engine_kicks_worker_with_bad_version),
        S_TEST(test_engine_kicks_worker_sending_oversized_reply),
        S_TEST(test_engine_disconnects_unregistered_heartbeat),
        S_TEST(test_engine_disconnects_unregistered_reply),
        S_TEST(test_engine_ignores_unregistered_disconnect),
        S_TEST(test_engine_rejects_request_from_client),
        S_TEST(test_engine_rejects_header_that_is_not_an_array),
        S_TEST(test_engine_rejects_missing_delimiter),
        S_TEST(test_engine_rejects_bad_field_with_request_id),
        S_TEST(test_engine_rejects_bad_version),
        S_TEST(test_engine_rejects_oversized_body),
        S_TEST(test_engine_rejects_oversized_header),
        S_TEST(test_engine_disconnects_malformed_ready),
        S_TEST(test_engine_disconnects_reserved_ready),
        S_TEST(test_engine_disconnects_ready_with_bad_version),
        S_TEST(test_engine_disconnects_oversized_ready),
        S_TEST(test_engine_send_failure_retires_worker),
        S_TEST(test_engine_send_failure_to_unknown_peer_is_counted),
        S_TEST(test_engine_kicks_peer_after_max_garbage),
        S_TEST(test_engine_garbage_window_starts_again),
        S_TEST(test_engine_garbage_counts_per_peer),
        S_TEST(test_engine_max_garbage_zero_never_kicks),
    };
#undef S_TEST
    return cmocka_run_group_tests_name("engine_faults", tests, NULL, NULL);
}
