//  engine_fixture.h - what the engine's unit tests (test_engine.c,
//  test_engine_faults.c, test_engine_failover.c) share: a cmocka fixture
//  around one zm_engine_t, inputs built as the ROUTER delivers them
//  ([routing][empty][header][body?]) with the codec and an explicit `now`,
//  expectations that pop and decode the outbox one message at a time, a
//  check of every counter at once, and zmesh.status read back with msgpack-c.
//  Every expectation fails the running test through cmocka; none of it
//  opens a socket, sleeps or reads a clock.
#ifndef ZT_ENGINE_FIXTURE_H_INCLUDED
#define ZT_ENGINE_FIXTURE_H_INCLUDED

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <msgpack.h>

#include "engine.h"

#define ZT_T0 100000                //  ms: when the engine starts; tests count from here
#define ZT_GRACE_MS 500             //  fixture config
#define ZT_MAX_QUEUE 3
#define ZT_MAX_BODY 64
#define ZT_HEARTBEAT_MS 1000        //  every test worker's READY
#define ZT_LIVENESS 3
#define ZT_HEX_MAX (2 * 255 + 1)

//  Bytes of one frame; literals may hold NUL bytes.
typedef struct {
    const char *data;           //  borrowed
    size_t size;
} zt_bytes_t;

#define ZT_BYTES(literal) ((zt_bytes_t){literal, sizeof(literal) - 1})
#define ZT_EMPTY ZT_BYTES("")
#define ZT_BODY ZT_BYTES("\x81\xa1x\x93\x01\x02\x03")     //  {"x": [1, 2, 3]}, ZMP.md 4.3
#define ZT_ANSWER ZT_BYTES("\xa6" "answer")              //  "answer"

//  One message popped from the outbox.
typedef struct {
    char peer[ZT_HEX_MAX];      //  destination routing id, lowercase hex
    zm_proto_t command;         //  decoded; owns its body
} zt_out_t;

//  A zmesh.status reply, unpacked.
typedef struct {
    zframe_t *body;             //  owned: the reply body; objects point into it
    msgpack_unpacked unpacked;  //  owned
    const msgpack_object *root; //  borrowed from unpacked
} zt_status_t;

//  A body of one positive fixint, 0 to 9: small distinct payloads.
zt_bytes_t zt_fixint(int value);

//  Fixtures: *state is a new engine (config: ZT_GRACE_MS, ZT_MAX_QUEUE,
//  ZT_MAX_BODY, and max_services if not 0), started at ZT_T0. Teardown also
//  frees what the last zt_pop and zt_status_fetch kept.
int zt_setup_with(void **state, size_t max_services);
int zt_setup(void **state);
int zt_setup_two_services(void **state);
int zt_teardown(void **state);

//  Inputs. Each feeds one message from peer; the engine must take it.
//  zt_set_user_id sets the sender key (ZAP User-Id) given with every feed
//  from then on (borrowed; NULL, the default, for none).
void zt_set_user_id(const char *user_id);
void zt_feed(zm_engine_t *engine, const char *peer, zm_proto_t *command, int64_t now);
void zt_feed_raw(zm_engine_t *engine, const char *peer, const zt_bytes_t *frames, size_t count,
                 int64_t now);
void zt_call(zm_engine_t *engine, const char *client, uint64_t request_id, const char *service,
             uint32_t timeout_ms, zt_bytes_t body, int64_t now);
void zt_call_flags(zm_engine_t *engine, const char *client, uint64_t request_id,
                   const char *service, uint32_t timeout_ms, uint32_t flags, zt_bytes_t body,
                   int64_t now);
void zt_ready(zm_engine_t *engine, const char *worker, const char *service, uint32_t slots,
              int64_t now);
void zt_ready_flags(zm_engine_t *engine, const char *worker, const char *service, uint32_t slots,
                    uint32_t flags, int64_t now);
void zt_answer(zm_engine_t *engine, const char *worker, uint64_t ticket, uint32_t status,
               zt_bytes_t body, int64_t now);
void zt_progress(zm_engine_t *engine, const char *peer, uint64_t ticket, uint32_t extend_ms,
                 int64_t now);
void zt_heartbeat(zm_engine_t *engine, const char *peer, int64_t now);
void zt_leave(zm_engine_t *engine, const char *peer, int64_t now);
void zt_send_failed(zm_engine_t *engine, const char *peer, bool full, int64_t now);

//  W1 and W2 serve echo; C1's call 1 is at W1, C2's call 2 at W2. Returns
//  the tickets.
void zt_two_busy_workers(zm_engine_t *engine, uint64_t *t1_p, uint64_t *t2_p);

//  Output. zt_pop returns the next outbox message, decoded; it stays valid
//  until the next zt_pop or the teardown.
zt_out_t *zt_pop(zm_engine_t *engine);
void zt_assert_peer(const zt_out_t *out, const char *peer);
void zt_assert_cmd(const zt_out_t *out, zm_cmd_t cmd);
void zt_assert_body(zframe_t *body, zt_bytes_t expected);
void zt_assert_reason(zframe_t *body, const char *part);

//  Expects a REQUEST to worker; returns its ticket. The _attempt form also
//  checks the REQUEST's attempt field.
uint64_t zt_expect_request(zm_engine_t *engine, const char *worker, const char *service,
                           uint32_t timeout_ms, zt_bytes_t body);
uint64_t zt_expect_request_attempt(zm_engine_t *engine, const char *worker, const char *service,
                                   uint32_t timeout_ms, zt_bytes_t body, uint32_t attempt);
void zt_expect_reply(zm_engine_t *engine, const char *client, uint64_t request_id,
                     uint32_t status, zt_bytes_t body);
void zt_expect_error(zm_engine_t *engine, const char *client, uint64_t request_id,
                     uint32_t status, const char *part);
void zt_expect_errors_any_order(zm_engine_t *engine, const char *client, uint32_t status,
                                const uint64_t *ids, size_t count);
void zt_expect_progress(zm_engine_t *engine, const char *client, uint64_t request_id,
                        uint32_t extend_ms);
void zt_expect_disconnect(zm_engine_t *engine, const char *peer, uint32_t status,
                          const char *part);
void zt_expect_heartbeat(zm_engine_t *engine, const char *peer);
void zt_expect_empty(zm_engine_t *engine);

//  Compares every counter, so an unexpected one moving fails too.
void zt_assert_counters(const zm_engine_t *engine, const zm_counters_t *expected);
#define ZT_COUNTERS(...) zt_assert_counters(engine, &(zm_counters_t){__VA_ARGS__})

//  zmesh.status: fetched as client "S" (request id 77), then walked.
const zt_status_t *zt_status_fetch(zm_engine_t *engine, int64_t now);
bool zt_str_is(const msgpack_object *object, const char *text);
const msgpack_object *zt_map_get(const msgpack_object *map, const char *key);
uint64_t zt_map_uint(const msgpack_object *map, const char *key);
const msgpack_object *zt_status_entry(const zt_status_t *status, const char *key,
                                      const char *field, const char *text);
uint32_t zt_status_count(const zt_status_t *status, const char *key);
void zt_assert_service(const zt_status_t *status, const char *name, uint64_t workers,
                       uint64_t slots, uint64_t inflight, uint64_t queued, uint64_t calls);

#endif
