//  test_pipe_slow_consumer - 200,000 numbered messages from one producer
//  (queued mode, ASYNC) through a consumer that is slow at first (1 ms per
//  message for the first 3,000) and then goes full speed. Every number must
//  arrive exactly once and in order, the pipeline must have refused the
//  producer while the consumer was slow (back-pressure, not buffering), and
//  the broker's resident memory must stay under a bound derived from its
//  own baseline and its --max-queue: a broker that buffered what the
//  producer offered would hold over 100 MiB of bodies alone.
#include "harness.h"
#include "pipe.h"
#include "zmesh.h"

#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define S_COUNT 200000
#define S_PAD 512                     //  bytes of padding: a body is about 530 bytes
#define S_BODY_BYTES 530
#define S_MAX_QUEUE "1000"            //  the broker's --max-queue
#define S_MAX_QUEUE_N 1000
#define S_WINDOW 1000                 //  the producer's window (the library's default)
#define S_CREDIT "10"
#define S_SLOW_COUNT "3000"           //  messages the consumer takes 1 ms over
#define S_SLOW_COUNT_N 3000
#define S_RUN_MS 100000               //  the whole run, far beyond what it takes
#define S_OVERHEAD_BYTES 1024         //  per message held: frames, zmq, item, hashes
//  Allocator arenas, libzmq buffers and (under ASan) shadow memory, the
//  allocator's caches and its quarantine: room for all of them (measured:
//  the peak is about 4 MiB over the baseline in an optimised build, 29 MiB
//  under ASan), and still at most half of the 101 MiB of bodies alone that
//  a broker holding every message would need.
#ifdef ZM_IT_SANITIZED
#define S_SLACK_KB (48 * 1024)
#else
#define S_SLACK_KB (16 * 1024)
#endif

static const char *const s_pipeline = "numbers";

//  Everything the run samples.
typedef struct {
    pid_t broker;
    zm_pipe_tail_t tail;              //  the consumer's record file
    uint64_t peak_kb;                 //  highest VmRSS seen
    uint64_t slow_peak_kb;            //  highest while the consumer was slow
    size_t samples;
    bool broker_gone;
} s_run_t;

//  Samples the broker's RSS; true once the consumer has every message or
//  the broker is gone.
static bool
s_sample(void *arg)
{
    s_run_t *run = arg;
    uint64_t kb = zm_pipe_rss_kb(run->broker);
    if (kb == 0) {
        run->broker_gone = true;
        return true;
    }
    run->samples++;
    run->peak_kb = kb > run->peak_kb ? kb : run->peak_kb;
    size_t lines = zm_pipe_tail_lines(&run->tail);
    if (lines <= S_SLOW_COUNT_N)
        run->slow_peak_kb = run->peak_kb;
    return lines >= S_COUNT;
}

//  ASan keeps freed memory in a quarantine of 256 MiB by default, which
//  would be counted as the broker's whether or not it is bounded: the
//  broker started here gets a small one.
static void
s_small_quarantine(void)
{
#ifdef ZM_IT_SANITIZED
    const char *options = getenv("ASAN_OPTIONS");
    char value[512];
    snprintf(value, sizeof value, "%s%squarantine_size_mb=8", options ? options : "",
             options && *options ? ":" : "");
    setenv("ASAN_OPTIONS", value, 1);
#endif
}

static void
test_pipe_slow_consumer_in_order_and_bounded(void **state)
{
    zm_harness_t *harness = *state;
    s_small_quarantine();
    zm_pipe_broker_t broker;
    const char *const flags[] = {"--max-queue", S_MAX_QUEUE, NULL};
    assert_true(zm_pipe_broker(harness, flags, &broker));
    char out[ZM_PIPE_PATH_MAX];
    zm_pipe_path(harness, "consumer.log", out, sizeof out);
    const char *const slow[] = {"--credit", S_CREDIT, "--slow-ms", "1", "--slow-count",
                                S_SLOW_COUNT, NULL};
    assert_non_null(zm_pipe_consumer(harness, broker.endpoint, s_pipeline, out, slow));
    assert_true(zm_pipe_wait_consumers(broker.endpoint, s_pipeline, 1, 10000));

    s_run_t run = {.broker = zm_proc_pid(broker.proc)};
    zm_pipe_tail_init(&run.tail, out);
    uint64_t baseline_kb = zm_pipe_rss_kb(run.broker);
    uint64_t bound_kb = baseline_kb
                        + (uint64_t) (S_MAX_QUEUE_N + S_WINDOW)
                              * (S_BODY_BYTES + S_OVERHEAD_BYTES) / 1024
                        + S_SLACK_KB;
    printf("slow consumer: broker baseline %" PRIu64 " KiB; bound = baseline + (max-queue %d +"
           " window %d) x (body %d + overhead %d) B + slack %d KiB = %" PRIu64 " KiB\n",
           baseline_kb, S_MAX_QUEUE_N, S_WINDOW, S_BODY_BYTES, S_OVERHEAD_BYTES, S_SLACK_KB,
           bound_kb);
    printf("slow consumer: holding all %d messages would take more than %d x %d B = %d KiB"
           " over the baseline\n",
           S_COUNT, S_COUNT, S_BODY_BYTES, S_COUNT * S_BODY_BYTES / 1024);
    char pad[16];
    snprintf(pad, sizeof pad, "%d", S_PAD);
    const char *const queued[] = {"--mode", "queued", "--async", "--pad", pad, NULL};
    int64_t started = zm_harness_now();
    zm_proc_t *producer = zm_pipe_producer(harness, broker.endpoint, s_pipeline, S_COUNT, queued);
    assert_non_null(producer);

    bool done = zm_harness_wait_until(s_sample, &run, S_RUN_MS);
    int64_t elapsed = zm_harness_now() - started;
    char result[256];
    bool produced = zm_pipe_producer_done(producer, 10000, result, sizeof result);
    printf("slow consumer: %zu of %d messages in %lld ms; producer: %s\n", run.tail.lines,
           S_COUNT, (long long) elapsed, result);
    printf("slow consumer: broker VmRSS peak %" PRIu64 " KiB (%" PRIu64 " while slow), %zu"
           " samples, bound %" PRIu64 " KiB\n",
           run.peak_kb, run.slow_peak_kb, run.samples, bound_kb);
    zm_pipe_status_t status;
    if (!done && zm_pipe_status(broker.endpoint, s_pipeline, &status) == ZMESH_OK)
        zm_pipe_status_print(&status, "slow consumer: status when the run stopped");
    assert_false(run.broker_gone);
    assert_true(done);
    assert_true(produced);
    assert_true(run.peak_kb <= bound_kb);

    zm_pipe_log_t *log = zm_pipe_log_load(harness, out);
    char why[256];
    bool in_order = zm_pipe_log_in_order(log, 1, S_COUNT, why, sizeof why);
    printf("slow consumer: %s\n", why);
    assert_true(in_order);

    bool settled = zm_pipe_wait_drained(broker.endpoint, s_pipeline, 10000);
    assert_int_equal(zm_pipe_status(broker.endpoint, s_pipeline, &status), ZMESH_OK);
    zm_pipe_status_print(&status, "slow consumer: status");
    assert_true(settled);
    assert_true(status.refused_full > 0);     //  the producer was held back, not buffered
    assert_int_equal(status.acked, S_COUNT);
    assert_int_equal(status.redelivered, 0);
    assert_int_equal(status.queued, 0);
    assert_int_equal(status.drops, 0);
    assert_int_equal(status.broker_drops, 0);
}

int
main(int argc, char **argv)
{
    zm_pipe_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pipe_slow_consumer_in_order_and_bounded,
                                        zm_harness_setup, zm_harness_teardown),
    };
    return cmocka_run_group_tests_name("integration_pipe_slow_consumer", tests, NULL, NULL);
}
