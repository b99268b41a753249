//  test_pipe_kill_consumer - processed mode (ZMESH_PROCESSED | ZMESH_ASYNC
//  sends, then a flush) into a pipeline with two consumers of a known
//  credit; one of them, slow so that it always holds a full credit of
//  unacknowledged messages, is killed with SIGKILL mid-stream. Nothing may
//  be lost: the producer's flush returns ZMESH_OK, every number was seen by
//  a consumer, the duplicates are at most the killed consumer's credit,
//  and every message the survivor saw that the killed one had seen came
//  flagged as redelivered (attempt > 1). And with one consumer at a time,
//  the order holds across the loss: the messages the killed one held come
//  again first, flagged.
#include "harness.h"
#include "pipe.h"
#include "zmesh.h"

#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define S_COUNT 40000
#define S_CREDIT 8
#define S_CREDIT_TEXT "8"
#define S_KILL_AFTER 30               //  messages the victim has seen when it is killed
#define S_ORDER_COUNT 3000           //  the order test's stream
#define S_RUN_MS 60000

static const char *const s_pipeline = "jobs";

typedef struct {
    zm_pipe_broker_t broker;
    char victim_out[ZM_PIPE_PATH_MAX];
    char survivor_out[ZM_PIPE_PATH_MAX];
    zm_proc_t *victim;
    zm_proc_t *survivor;
} s_setup_t;

//  Broker, a slow victim (5 ms a message, so it holds its whole credit) and
//  a fast survivor, both with credit S_CREDIT and a short heartbeat.
static void
s_start(zm_harness_t *harness, s_setup_t *setup)
{
    assert_true(zm_pipe_broker(harness, NULL, &setup->broker));
    zm_pipe_path(harness, "victim.log", setup->victim_out, sizeof setup->victim_out);
    zm_pipe_path(harness, "survivor.log", setup->survivor_out, sizeof setup->survivor_out);
    const char *const slow[] = {"--credit", S_CREDIT_TEXT, "--slow-ms", "5", "--heartbeat-ms",
                                "200", "--liveness", "5", NULL};
    const char *const fast[] = {"--credit", S_CREDIT_TEXT, "--heartbeat-ms", "200",
                                "--liveness", "5", NULL};
    setup->victim = zm_pipe_consumer(harness, setup->broker.endpoint, s_pipeline,
                                     setup->victim_out, slow);
    assert_non_null(setup->victim);
    assert_true(zm_pipe_wait_consumers(setup->broker.endpoint, s_pipeline, 1, 10000));
    setup->survivor = zm_pipe_consumer(harness, setup->broker.endpoint, s_pipeline,
                                       setup->survivor_out, fast);
    assert_non_null(setup->survivor);
    assert_true(zm_pipe_wait_consumers(setup->broker.endpoint, s_pipeline, 2, 10000));
}

//  Every record of the survivor whose number the victim had seen must be
//  flagged; returns how many are not.
static size_t
s_unflagged_repeats(const zm_pipe_log_t *victim, const zm_pipe_log_t *survivor, size_t *seen_p)
{
    size_t unflagged = 0, seen = 0;
    for (size_t i = 0; i < survivor->count; i++) {
        const zm_pipe_record_t *record = &survivor->records[i];
        if (!zm_pipe_log_has(victim, record->number))
            continue;
        seen++;
        if (record->attempt < 2 || !record->redelivered) {
            printf("kill consumer: survivor saw %" PRIu64 " (id %" PRIu64 ") again with attempt"
                   " %" PRIu32 "\n",
                   record->number, record->id, record->attempt);
            unflagged++;
        }
    }
    *seen_p = seen;
    return unflagged;
}

static void
test_pipe_kill_consumer_processed_mode_loses_nothing(void **state)
{
    zm_harness_t *harness = *state;
    s_setup_t setup;
    s_start(harness, &setup);
    const char *const processed[] = {"--mode", "processed", "--async", NULL};
    zm_proc_t *producer =
        zm_pipe_producer(harness, setup.broker.endpoint, s_pipeline, S_COUNT, processed);
    assert_non_null(producer);

    zm_pipe_tail_t victim_tail;
    zm_pipe_tail_init(&victim_tail, setup.victim_out);
    assert_true(zm_pipe_wait_lines(&victim_tail, S_KILL_AFTER, 20000));
    zm_pipe_status_t before;
    assert_int_equal(zm_pipe_status(setup.broker.endpoint, s_pipeline, &before), ZMESH_OK);
    zm_harness_kill(setup.victim, SIGKILL);
    assert_true(zm_harness_reap(setup.victim, 5000, NULL));
    zm_pipe_status_print(&before, "kill consumer: just before SIGKILL");
    //  Mid-stream: most of the messages are still to come.
    assert_true(before.acked < S_COUNT / 2);

    char result[256];
    bool produced = zm_pipe_producer_done(producer, S_RUN_MS, result, sizeof result);
    printf("kill consumer: producer: %s\n", result);
    assert_true(produced);            //  every send and the flush: ZMESH_OK, so lost = 0

    const zm_pipe_log_t *logs[2] = {zm_pipe_log_load(harness, setup.victim_out),
                                    zm_pipe_log_load(harness, setup.survivor_out)};
    zm_pipe_tally_t tally;
    zm_pipe_tally(logs, 2, S_COUNT, &tally);
    zm_pipe_tally_print(&tally, "kill consumer: both");
    size_t again = 0;
    size_t unflagged = s_unflagged_repeats(logs[0], logs[1], &again);
    printf("kill consumer: the victim saw %zu, the survivor %zu, %zu of them after the victim;"
           " credit %d\n",
           logs[0]->count, logs[1]->count, again, S_CREDIT);
    assert_int_equal(tally.missing, 0);
    assert_int_equal(tally.bad_lines, 0);
    assert_int_equal(tally.out_of_range, 0);
    assert_true(tally.duplicates <= S_CREDIT);
    assert_int_equal(tally.duplicates, again);
    assert_int_equal(unflagged, 0);
    assert_int_equal(tally.unflagged_repeats, 0);
    assert_int_equal(tally.flag_mismatches, 0);

    zm_pipe_status_t after;
    assert_int_equal(zm_pipe_status(setup.broker.endpoint, s_pipeline, &after), ZMESH_OK);
    zm_pipe_status_print(&after, "kill consumer: after");
    uint64_t expired = zm_harness_counter(setup.broker.endpoint, "consumers_expired");
    uint64_t unreachable = zm_harness_counter(setup.broker.endpoint, "consumers_unreachable");
    printf("kill consumer: consumers expired %" PRIu64 ", unreachable %" PRIu64
           " (more than 1 in all: a live one was taken for dead)\n",
           expired, unreachable);
    assert_true(expired + unreachable <= 1);
    assert_int_equal(after.consumers, 1);
    assert_true(after.redelivered >= again);
    assert_true(after.redelivered <= S_CREDIT);
    assert_int_equal(after.acked, S_COUNT);
    assert_int_equal(after.queued, 0);
    assert_int_equal(after.in_flight, 0);
    assert_int_equal(after.drops, 0);
}

typedef struct {
    const char *endpoint;
    uint64_t redelivered;             //  last value read
} s_lost_t;

//  The broker has noticed the loss: no consumer, the messages put back.
static bool
s_loss_noticed(void *arg)
{
    s_lost_t *lost = arg;
    zm_pipe_status_t status;
    if (zm_pipe_status(lost->endpoint, s_pipeline, &status) != ZMESH_OK)
        return false;
    lost->redelivered = status.redelivered;
    return status.known && status.consumers == 0;
}

//  One producer, one consumer at a time: the first is killed holding its
//  credit, the second starts once the broker has noticed. The messages the
//  first held come again first, flagged, so the two consumers' records, read
//  one after the other with flagged repeats skipped, are 1..N in order.
static void
test_pipe_kill_consumer_order_holds_across_the_loss(void **state)
{
    zm_harness_t *harness = *state;
    zm_pipe_broker_t broker;
    assert_true(zm_pipe_broker(harness, NULL, &broker));
    char first_out[ZM_PIPE_PATH_MAX], second_out[ZM_PIPE_PATH_MAX];
    zm_pipe_path(harness, "first.log", first_out, sizeof first_out);
    zm_pipe_path(harness, "second.log", second_out, sizeof second_out);
    const char *const slow[] = {"--credit", S_CREDIT_TEXT, "--slow-ms", "5", "--heartbeat-ms",
                                "200", "--liveness", "5", NULL};
    zm_proc_t *first = zm_pipe_consumer(harness, broker.endpoint, s_pipeline, first_out, slow);
    assert_non_null(first);
    assert_true(zm_pipe_wait_consumers(broker.endpoint, s_pipeline, 1, 10000));
    const char *const queued[] = {"--mode", "queued", "--async", NULL};
    zm_proc_t *producer =
        zm_pipe_producer(harness, broker.endpoint, s_pipeline, S_ORDER_COUNT, queued);
    assert_non_null(producer);
    zm_pipe_tail_t tail;
    zm_pipe_tail_init(&tail, first_out);
    assert_true(zm_pipe_wait_lines(&tail, S_KILL_AFTER, 20000));
    zm_harness_kill(first, SIGKILL);
    assert_true(zm_harness_reap(first, 5000, NULL));
    s_lost_t lost = {broker.endpoint, 0};
    assert_true(zm_harness_wait_until(s_loss_noticed, &lost, 10000));
    printf("kill consumer, order: the first saw %zu, held %" PRIu64 " when killed\n",
           zm_pipe_tail_lines(&tail), lost.redelivered);
    assert_true(lost.redelivered >= 1 && lost.redelivered <= S_CREDIT);

    assert_non_null(zm_pipe_consumer(harness, broker.endpoint, s_pipeline, second_out, NULL));
    char result[256];
    bool produced = zm_pipe_producer_done(producer, S_RUN_MS, result, sizeof result);
    printf("kill consumer, order: producer: %s\n", result);
    assert_true(produced);
    assert_true(zm_pipe_wait_drained(broker.endpoint, s_pipeline, S_RUN_MS));
    const zm_pipe_log_t *logs[2] = {zm_pipe_log_load(harness, first_out),
                                    zm_pipe_log_load(harness, second_out)};
    size_t skipped;
    char why[256];
    bool in_order = zm_pipe_logs_in_order(logs, 2, S_ORDER_COUNT, &skipped, why, sizeof why);
    printf("kill consumer, order: %s\n", why);
    assert_true(in_order);
    assert_true(skipped <= lost.redelivered);
    zm_pipe_status_t status;
    assert_int_equal(zm_pipe_status(broker.endpoint, s_pipeline, &status), ZMESH_OK);
    zm_pipe_status_print(&status, "kill consumer, order: after");
    assert_int_equal(status.redelivered, lost.redelivered);
    assert_int_equal(status.drops, 0);
}

int
main(int argc, char **argv)
{
    zm_pipe_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pipe_kill_consumer_processed_mode_loses_nothing,
                                        zm_harness_setup, zm_harness_teardown),
        cmocka_unit_test_setup_teardown(test_pipe_kill_consumer_order_holds_across_the_loss,
                                        zm_harness_setup, zm_harness_teardown),
    };
    return cmocka_run_group_tests_name("integration_pipe_kill_consumer", tests, NULL, NULL);
}
