//  test_hostile_counts - MessagePack headers that claim huge counts or
//  lengths (array32, map32, str32, bin32, ext32 of 4 Gi, array16/map16 of
//  64 Ki), bare and inside a valid array or map, as CALL bodies and in the
//  header, sent 200 times each to a broker that runs under a 1 GiB
//  address-space limit: each is answered 400 with its request id, the
//  broker's resident memory (and its peak) stays flat, and a good call still
//  works. msgpack-c would allocate from such a count before reading an
//  element; the broker must not. ASan reserves terabytes of address space,
//  so sanitizer builds run the same test without the limit. The broker runs
//  with --max-garbage 0: this test measures memory, test_hostile_kick kicks.
#include "harness.h"
#include "hostile.h"
#include "wire.h"
#include "zmesh.h"

#include <czmq.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#if defined(ZM_IT_SANITIZED) || defined(__SANITIZE_ADDRESS__)
#define S_SANITIZED 1
#else
#define S_SANITIZED 0
#endif

#define S_ADDRESS_LIMIT ((size_t) 1 << 30)
#define S_WARMUP_ROUNDS 20            //  brings allocator and libzmq buffers to steady state
#define S_ROUNDS 200
//  RSS may grow by allocator slack and libzmq's per-connection buffers (a
//  few hundred KiB; ASan's allocator, a few MiB), never by what a count
//  claims (GiB).
#define S_GROWTH_MAX_KB (8L * 1024)

//  The lying headers, each a complete (and too short) object.
static const struct {
    const char *name;
    const char *bytes;
    size_t size;
} s_liars[] = {
    {"array32 of 4 Gi", "\xdd\xff\xff\xff\xff", 5},
    {"map32 of 4 Gi pairs", "\xdf\xff\xff\xff\xff", 5},
    {"str32 of 4 GiB", "\xdb\xff\xff\xff\xff", 5},
    {"bin32 of 4 GiB", "\xc6\xff\xff\xff\xff", 5},
    {"ext32 of 4 GiB", "\xc9\xff\xff\xff\xff\x01", 6},
    {"array16 of 64 Ki", "\xdc\xff\xff", 3},
    {"map16 of 64 Ki pairs", "\xde\xff\xff", 3},
};
#define S_LIARS (sizeof s_liars / sizeof s_liars[0])

//  Where a liar sits in the body.
static const struct {
    const char *name;
    const char *prefix;               //  bytes before the liar
    size_t size;
} s_wrappers[] = {
    {"bare", "", 0},
    {"in [1, _]", "\x92\x01", 2},
    {"in {\"k\": _}", "\x81\xa1k", 3},
    {"in [[[_]]]", "\x91\x91\x91", 3},
};
#define S_WRAPPERS (sizeof s_wrappers / sizeof s_wrappers[0])
#define S_HEADER_CASES 3
#define S_PER_ROUND (S_LIARS * S_WRAPPERS + S_HEADER_CASES)

//  Header frames whose counts lie. The answer's id: 0 when the header
//  array itself lies; ours when only the service name does.
static zmsg_t *
s_header_liar(int which, uint64_t id, zm_hostile_id_t *rule_p)
{
    uint8_t header[32];
    size_t size = 0;
    if (which == 0) {
        memcpy(header, "\xdd\xff\xff\xff\xff\xa4ZMP1\xa4" "CALL", 15);
        size = 15;
        *rule_p = ZM_HOSTILE_ID_ZERO;
    }
    else {
        memcpy(header, "\x95\xa4ZMP1\xa4" "CALL\xcf", 12);
        for (int i = 0; i < 8; i++)
            header[12 + i] = (uint8_t) (id >> (56 - 8 * i));
        size = 20;
        //  service: str32 (or str16) claiming far more than the frame holds
        if (which == 1)
            memcpy(header + size, "\xdb\xff\xff\xff\xff", 5);
        else
            memcpy(header + size, "\xda\xff\xff", 3);
        size += which == 1 ? 5 : 3;
        *rule_p = ZM_HOSTILE_ID_EXACT;
    }
    zmsg_t *msg = zmsg_new();
    zm_wire_add(msg, "", 0);
    zm_wire_add(msg, header, size);
    zm_wire_add(msg, "\xc0", 1);
    return msg;
}

//  Sends every case once and checks each 400. Returns false at the first miss.
static bool
s_round(zsock_t *raw, int round)
{
    uint64_t id = (uint64_t) round * 1000 + 1;
    for (size_t w = 0; w < S_WRAPPERS; w++)
        for (size_t l = 0; l < S_LIARS; l++, id++) {
            uint8_t body[16];
            memcpy(body, s_wrappers[w].prefix, s_wrappers[w].size);
            memcpy(body + s_wrappers[w].size, s_liars[l].bytes, s_liars[l].size);
            zmsg_t *msg = zm_wire_call(id, body, s_wrappers[w].size + s_liars[l].size);
            if (!zm_hostile_expect(raw, &msg, 400, id, ZM_HOSTILE_ID_EXACT)) {
                fprintf(stderr, "counts: round %d: %s %s\n", round, s_liars[l].name,
                        s_wrappers[w].name);
                return false;
            }
        }
    for (int which = 0; which < S_HEADER_CASES; which++, id++) {
        zm_hostile_id_t rule;
        zmsg_t *msg = s_header_liar(which, id, &rule);
        if (!zm_hostile_expect(raw, &msg, 400, id, rule)) {
            fprintf(stderr, "counts: round %d: header case %d\n", round, which);
            return false;
        }
    }
    return true;
}

//  ASan keeps freed blocks resident in a quarantine of up to 256 MiB, which
//  would be measured as growth: in sanitizer builds the broker of this test
//  runs without it (the rest of the suite keeps it). Returns the old value.
static char *
s_asan_without_quarantine(void)
{
    const char *old = getenv("ASAN_OPTIONS");
    char *saved = old ? strdup(old) : NULL;
    char options[1024];
    snprintf(options, sizeof options, "%s%squarantine_size_mb=0", old ? old : "",
             old && *old ? ":" : "");
    setenv("ASAN_OPTIONS", options, 1);
    return saved;
}

static void
s_asan_restore(char **saved_p)
{
    if (*saved_p)
        setenv("ASAN_OPTIONS", *saved_p, 1);
    else
        unsetenv("ASAN_OPTIONS");
    free(*saved_p);
    *saved_p = NULL;
}

//  The limit the kernel holds for the broker, from /proc/PID/limits.
static unsigned long long
s_address_limit_of(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/limits", (int) pid);
    FILE *file = fopen(path, "r");
    unsigned long long limit = 0;
    while (file && fgets(line, sizeof line, file))
        if (strncmp(line, "Max address space", 17) == 0)
            sscanf(line + 17, "%llu", &limit);
    if (file)
        fclose(file);
    return limit;
}

static void
test_hostile_counts_refused_and_memory_stays_flat(void **state)
{
    zm_harness_t *harness = *state;
    char *asan_options = NULL;
    if (S_SANITIZED)
        asan_options = s_asan_without_quarantine();
    else
        zm_harness_set_address_limit(harness, S_ADDRESS_LIMIT);
    const char *flags[] = {"--max-garbage", "0", NULL};
    char endpoint[256];
    zm_proc_t *broker = zm_harness_broker(harness, "tcp://127.0.0.1:*", flags, endpoint,
                                          sizeof endpoint);
    if (S_SANITIZED)
        s_asan_restore(&asan_options);
    zm_harness_set_address_limit(harness, 0);                  //  the worker runs unlimited
    assert_non_null(broker);
    assert_non_null(zm_harness_worker(harness, endpoint, "echo", "echo", NULL));
    assert_true(zm_harness_wait_workers(endpoint, "echo", 1, 10000));
    pid_t pid = zm_proc_pid(broker);
    if (!S_SANITIZED)
        assert_int_equal(s_address_limit_of(pid), S_ADDRESS_LIMIT);
    zmesh_client_t *client = zm_harness_client(harness, endpoint);
    zsock_t *raw = zm_wire_dealer(harness, endpoint);
    assert_non_null(client);
    assert_non_null(raw);
    assert_true(zm_wire_echo_ok(client));

    for (int round = 0; round < S_WARMUP_ROUNDS; round++)
        assert_true(s_round(raw, round));
    long rss_before = zm_hostile_proc_kb(pid, "VmRSS");
    long peak_before = zm_hostile_proc_kb(pid, "VmHWM");
    for (int round = S_WARMUP_ROUNDS; round < S_WARMUP_ROUNDS + S_ROUNDS; round++)
        assert_true(s_round(raw, round));
    long rss_after = zm_hostile_proc_kb(pid, "VmRSS");
    long peak_after = zm_hostile_proc_kb(pid, "VmHWM");
    print_message("broker rss %ld -> %ld kB (%+ld), peak %ld -> %ld kB, vm peak %ld kB, "
                  "limit %s, %d messages\n", rss_before, rss_after, rss_after - rss_before,
                  peak_before, peak_after, zm_hostile_proc_kb(pid, "VmPeak"),
                  S_SANITIZED ? "none (sanitizer build)" : "1 GiB", (int) (S_ROUNDS * S_PER_ROUND));
    assert_true(rss_before > 0 && rss_after > 0 && peak_after > 0);
    assert_true(rss_after - rss_before < S_GROWTH_MAX_KB);
    assert_true(peak_after - rss_before < S_GROWTH_MAX_KB);

    assert_true(zm_hostile_alive(broker));
    assert_true(zm_wire_echo_ok(client));
    zmsg_t *good = zm_wire_call(7, "\x91\x01", 2);              //  and the liar's own socket
    assert_true(zm_hostile_expect(raw, &good, 200, 7, ZM_HOSTILE_ID_EXACT));
    zm_status_t status;
    assert_int_equal(zm_harness_status(endpoint, "echo", &status), ZMESH_OK);
    uint64_t sent = (uint64_t) (S_WARMUP_ROUNDS + S_ROUNDS) * S_PER_ROUND;
    assert_int_equal(zm_status_counter(&status, "rejected_malformed"), sent);
    assert_int_equal(zm_status_counter(&status, "peers_kicked"), 0);
    assert_int_equal(status.workers, 1);
}

int
main(int argc, char **argv)
{
    zm_harness_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hostile_counts_refused_and_memory_stays_flat,
                                        zm_harness_setup, zm_harness_teardown),
    };
    return cmocka_run_group_tests_name("integration_hostile_counts", tests, NULL, NULL);
}
