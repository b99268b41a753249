//  Unit tests for zm_crc and zm_replog: records and snapshots written,
//  replayed, and damaged on purpose (cut short, a byte flipped, junk
//  headers, a snapshot that is not a state), in a fresh directory each.
#include "zm_crc.h"
#include "zm_replog.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

//  What the callbacks were told: the state is "the snapshot's bytes, then
//  the records' bytes", kept as the sequence numbers and a running check.
typedef struct {
    uint64_t snapshot_seq;
    char snapshot[64];
    uint64_t seqs[512];
    size_t count;
    uint64_t fail_at;           //  apply returns false for this seq
    bool refuse_snapshot;       //  restore returns false
    int resets;                 //  restore(0, NULL, 0) calls
} s_state_t;

static bool
s_restore(void *arg, uint64_t seq, const uint8_t *data, size_t size)
{
    s_state_t *state = arg;
    if (seq == 0 && !data) {
        state->resets++;
        state->snapshot_seq = 0;
        state->snapshot[0] = '\0';
        state->count = 0;
        return true;
    }
    if (state->refuse_snapshot)
        return false;
    state->snapshot_seq = seq;
    snprintf(state->snapshot, sizeof state->snapshot, "%.*s", (int) size, (const char *) data);
    return true;
}

static bool
s_apply(void *arg, uint64_t seq, const uint8_t *data, size_t size)
{
    s_state_t *state = arg;
    if (seq == state->fail_at)
        return false;
    char expected[32];
    snprintf(expected, sizeof expected, "record %llu", (unsigned long long) seq);
    assert_int_equal(size, strlen(expected));
    assert_memory_equal(data, expected, size);
    assert_true(state->count < 512);
    state->seqs[state->count++] = seq;
    return true;
}

static char s_dir[64];

static int
s_setup(void **unused)
{
    (void) unused;
    snprintf(s_dir, sizeof s_dir, "/tmp/zm-replog-XXXXXX");
    assert_non_null(mkdtemp(s_dir));
    strcat(s_dir, "/state");        //  zm_replog_open makes the last level itself
    return 0;
}

static int
s_teardown(void **unused)
{
    (void) unused;
    char *slash = strrchr(s_dir, '/');
    *slash = '\0';
    char command[128];
    snprintf(command, sizeof command, "rm -rf '%s'", s_dir);
    assert_int_equal(system(command), 0);
    return 0;
}

static char *
s_file(const char *name)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", s_dir, name);
    return path;
}

static zm_replog_t *
s_open(s_state_t *state, zm_replog_report_t *report)
{
    memset(state->seqs, 0, sizeof state->seqs);
    state->count = 0;
    state->snapshot_seq = 0;
    state->snapshot[0] = '\0';
    char error[256] = "";
    zm_replog_t *log = zm_replog_open(s_dir, s_restore, s_apply, state, report, error,
                                      sizeof error);
    assert_non_null(log);
    return log;
}

static void
s_append(zm_replog_t *log, uint64_t first, uint64_t last)
{
    for (uint64_t seq = first; seq <= last; seq++) {
        char record[32];
        snprintf(record, sizeof record, "record %llu", (unsigned long long) seq);
        assert_int_equal(zm_replog_append(log, seq, record, strlen(record)), 0);
    }
    assert_int_equal(zm_replog_sync(log), 0);
}

static off_t
s_size(const char *name)
{
    struct stat info;
    assert_int_equal(stat(s_file(name), &info), 0);
    return info.st_size;
}

//  Flips one bit of byte offset of file name.
static void
s_flip(const char *name, off_t offset)
{
    FILE *file = fopen(s_file(name), "r+b");
    assert_non_null(file);
    assert_int_equal(fseeko(file, offset, SEEK_SET), 0);
    int byte = fgetc(file);
    assert_true(byte >= 0);
    assert_int_equal(fseeko(file, offset, SEEK_SET), 0);
    fputc(byte ^ 0x10, file);
    fclose(file);
}

static void
test_crc_check_value(void **unused)
{
    (void) unused;
    assert_int_equal(zm_crc32c(0, "123456789", 9), 0xE3069283u);
    //  Continued in pieces, the same value.
    assert_int_equal(zm_crc32c(zm_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
    assert_int_equal(zm_crc32c(0, "", 0), 0);
}

static void
test_append_and_replay(void **unused)
{
    (void) unused;
    s_state_t state = {0};
    zm_replog_report_t report;
    zm_replog_t *log = s_open(&state, &report);
    assert_false(report.damaged);
    assert_int_equal(report.last_seq, 0);
    assert_int_equal(zm_replog_last_seq(log), 0);
    s_append(log, 1, 300);
    assert_int_equal(zm_replog_last_seq(log), 300);
    assert_int_equal(zm_replog_log_bytes(log), (uint64_t) s_size("log"));
    zm_replog_destroy(&log);

    log = s_open(&state, &report);
    assert_false(report.damaged);
    assert_int_equal(report.records, 300);
    assert_int_equal(report.last_seq, 300);
    assert_int_equal(state.count, 300);
    for (size_t i = 0; i < state.count; i++)
        assert_int_equal(state.seqs[i], i + 1);
    s_append(log, 301, 302);            //  appends go on after a replay
    zm_replog_destroy(&log);
    log = s_open(&state, &report);
    assert_int_equal(report.last_seq, 302);
    zm_replog_destroy(&log);
}

static void
test_append_refuses_wrong_seq(void **unused)
{
    (void) unused;
    s_state_t state = {0};
    zm_replog_report_t report;
    zm_replog_t *log = s_open(&state, &report);
    s_append(log, 1, 3);
    off_t size = s_size("log");
    assert_int_equal(zm_replog_append(log, 3, "x", 1), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(zm_replog_append(log, 5, "x", 1), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(zm_replog_append(log, 4, NULL, 1), -1);
    assert_int_equal(s_size("log"), size);     //  nothing written
    assert_int_equal(zm_replog_last_seq(log), 3);
    zm_replog_destroy(&log);
}

static void
test_snapshot_then_log(void **unused)
{
    (void) unused;
    s_state_t state = {0};
    zm_replog_report_t report;
    zm_replog_t *log = s_open(&state, &report);
    s_append(log, 1, 100);
    assert_int_equal(zm_replog_snapshot(log, 100, "state at 100", 12), 0);
    assert_int_equal(zm_replog_log_bytes(log), 8);     //  the log holds only its header
    s_append(log, 101, 110);
    zm_replog_destroy(&log);

    log = s_open(&state, &report);
    assert_false(report.damaged);
    assert_int_equal(report.snapshot_seq, 100);
    assert_string_equal(state.snapshot, "state at 100");
    assert_int_equal(report.records, 10);
    assert_int_equal(state.seqs[0], 101);
    assert_int_equal(report.last_seq, 110);
    zm_replog_destroy(&log);
}

//  A crash after the snapshot is in place but before the log was emptied
//  leaves records the snapshot covers: they are skipped, not applied twice.
static void
test_snapshot_covers_old_records(void **unused)
{
    (void) unused;
    s_state_t state = {0};
    zm_replog_report_t report;
    zm_replog_t *log = s_open(&state, &report);
    s_append(log, 1, 5);
    char old_log[160];
    snprintf(old_log, sizeof old_log, "%s.old", s_file("log"));
    char command[400];
    snprintf(command, sizeof command, "cp '%s' '%s'", s_file("log"), old_log);
    assert_int_equal(system(command), 0);
    assert_int_equal(zm_replog_snapshot(log, 5, "five", 4), 0);
    zm_replog_destroy(&log);
    assert_int_equal(rename(old_log, s_file("log")), 0);

    log = s_open(&state, &report);
    assert_false(report.damaged);
    assert_int_equal(report.snapshot_seq, 5);
    assert_int_equal(report.records, 0);
    assert_int_equal(state.count, 0);
    assert_int_equal(report.last_seq, 5);
    s_append(log, 6, 6);
    zm_replog_destroy(&log);
    log = s_open(&state, &report);
    assert_false(report.damaged);
    assert_int_equal(report.last_seq, 6);
    assert_int_equal(state.count, 1);
    zm_replog_destroy(&log);
}

//  Catch-up: a peer's snapshot ahead of the local log replaces it.
static void
test_install_peer_snapshot(void **unused)
{
    (void) unused;
    s_state_t state = {0};
    zm_replog_report_t report;
    zm_replog_t *log = s_open(&state, &report);
    s_append(log, 1, 3);
    assert_int_equal(zm_replog_snapshot(log, 40, "peer at 40", 10), 0);
    assert_int_equal(zm_replog_last_seq(log), 40);
    assert_int_equal(zm_replog_append(log, 4, "record 4", 8), -1);
    s_append(log, 41, 42);
    zm_replog_destroy(&log);
    log = s_open(&state, &report);
    assert_false(report.damaged);
    assert_int_equal(report.snapshot_seq, 40);
    assert_string_equal(state.snapshot, "peer at 40");
    assert_int_equal(report.records, 2);
    assert_int_equal(report.last_seq, 42);
    zm_replog_destroy(&log);
}

//  A replica ahead with writes of a dead epoch installs a peer's snapshot
//  behind it: its own later records are gone, on disk too.
static void
test_snapshot_going_back(void **unused)
{
    (void) unused;
    s_state_t state = {0};
    zm_replog_report_t report;
    zm_replog_t *log = s_open(&state, &report);
    s_append(log, 1, 9);
    assert_int_equal(zm_replog_snapshot(log, 6, "peer at 6", 9), 0);
    assert_int_equal(zm_replog_last_seq(log), 6);
    s_append(log, 7, 7);
    zm_replog_destroy(&log);
    log = s_open(&state, &report);
    assert_false(report.damaged);
    assert_string_equal(state.snapshot, "peer at 6");
    assert_int_equal(report.records, 1);
    assert_int_equal(report.last_seq, 7);
    zm_replog_destroy(&log);
}

//  A snapshot that cannot be written (here: snapshot.tmp is a directory)
//  changes nothing, going forward or back: later appends are kept.
static void
test_failed_snapshot_changes_nothing(void **unused)
{
    (void) unused;
    s_state_t state = {0};
    zm_replog_report_t report;
    zm_replog_t *log = s_open(&state, &report);
    s_append(log, 1, 3);
    assert_int_equal(zm_replog_snapshot(log, 3, "three", 5), 0);
    s_append(log, 4, 10);
    assert_int_equal(mkdir(s_file("snapshot.tmp"), 0700), 0);
    assert_int_equal(zm_replog_snapshot(log, 5, "back", 4), -1);
    assert_int_equal(zm_replog_snapshot(log, 10, "forward", 7), -1);
    assert_int_equal(zm_replog_last_seq(log), 10);
    s_append(log, 11, 11);
    zm_replog_destroy(&log);
    assert_int_equal(rmdir(s_file("snapshot.tmp")), 0);
    log = s_open(&state, &report);
    assert_false(report.damaged);
    assert_string_equal(state.snapshot, "three");
    assert_int_equal(report.last_seq, 11);
    assert_int_equal(state.count, 8);
    zm_replog_destroy(&log);
}

//  An append cut short by a crash: the incomplete record is reported as a
//  torn tail and cut off; the log is whole again for the next append.
static void
test_torn_tail(void **unused)
{
    (void) unused;
    s_state_t state = {0};
    zm_replog_report_t report;
    zm_replog_t *log = s_open(&state, &report);
    s_append(log, 1, 20);
    zm_replog_destroy(&log);
    off_t size = s_size("log");
    assert_int_equal(truncate(s_file("log"), size - 3), 0);

    log = s_open(&state, &report);
    assert_true(report.damaged);
    assert_true(report.torn_tail);
    assert_non_null(strstr(report.reason, "incomplete record"));
    assert_int_equal(report.last_seq, 19);
    assert_int_equal(state.count, 19);
    s_append(log, 20, 21);
    zm_replog_destroy(&log);

    log = s_open(&state, &report);
    assert_false(report.damaged);
    assert_int_equal(report.last_seq, 21);
    zm_replog_destroy(&log);

    //  Cut inside a record header too.
    size = s_size("log");
    assert_int_equal(truncate(s_file("log"), size - (off_t) strlen("record 21") - 5), 0);
    log = s_open(&state, &report);
    assert_true(report.torn_tail);
    assert_non_null(strstr(report.reason, "incomplete record header"));
    assert_int_equal(report.last_seq, 20);
    zm_replog_destroy(&log);
}

//  A flipped byte in the middle: found by the checksum, everything from
//  that record on is dropped (never applied), the file cut there.
static void
test_flipped_byte(void **unused)
{
    (void) unused;
    s_state_t state = {0};
    zm_replog_report_t report;
    zm_replog_t *log = s_open(&state, &report);
    s_append(log, 1, 9);            //  "record N": 8 bytes, 24-byte records
    zm_replog_destroy(&log);
    //  Record 5 starts at 8 + 4 * 24; flip a payload byte, then a seq byte
    //  of record 3 in a second round.
    s_flip("log", 8 + 4 * 24 + 16 + 2);
    log = s_open(&state, &report);
    assert_true(report.damaged);
    assert_false(report.torn_tail);
    assert_non_null(strstr(report.reason, "checksum mismatch"));
    assert_int_equal(report.last_seq, 4);
    assert_int_equal(state.count, 4);
    assert_int_equal(s_size("log"), 8 + 4 * 24);
    assert_int_equal(s_size("log.damaged"), 5 * 24);   //  what was cut off is kept
    zm_replog_destroy(&log);

    s_flip("log", 8 + 2 * 24 + 8);
    log = s_open(&state, &report);
    assert_true(report.damaged);
    assert_int_equal(report.last_seq, 2);
    zm_replog_destroy(&log);

    //  A length field flipped to something huge: no allocation, damage.
    s_flip("log", 8 + 1 * 24 + 3);
    log = s_open(&state, &report);
    assert_true(report.damaged);
    assert_int_equal(report.last_seq, 1);
    zm_replog_destroy(&log);
}

static void
test_junk_log_header(void **unused)
{
    (void) unused;
    s_state_t state = {0};
    zm_replog_report_t report;
    zm_replog_t *log = s_open(&state, &report);
    s_append(log, 1, 4);
    assert_int_equal(zm_replog_snapshot(log, 4, "four", 4), 0);
    s_append(log, 5, 6);
    zm_replog_destroy(&log);
    s_flip("log", 0);

    log = s_open(&state, &report);
    assert_true(report.damaged);
    assert_non_null(strstr(report.reason, "log: no valid header"));
    assert_int_equal(report.snapshot_seq, 4);  //  the snapshot still holds
    assert_int_equal(report.last_seq, 4);
    assert_int_equal(access(s_file("log.damaged"), F_OK), 0);
    s_append(log, 5, 5);
    zm_replog_destroy(&log);
    log = s_open(&state, &report);
    assert_false(report.damaged);
    assert_int_equal(report.last_seq, 5);
    zm_replog_destroy(&log);
}

//  A damaged snapshot loses the log built on it too: the state starts
//  empty, both files are set aside, the callbacks were told nothing.
static void
test_damaged_snapshot(void **unused)
{
    (void) unused;
    s_state_t state = {0};
    zm_replog_report_t report;
    zm_replog_t *log = s_open(&state, &report);
    s_append(log, 1, 4);
    assert_int_equal(zm_replog_snapshot(log, 4, "four", 4), 0);
    s_append(log, 5, 6);
    zm_replog_destroy(&log);
    s_flip("snapshot", s_size("snapshot") - 1);

    log = s_open(&state, &report);
    assert_true(report.damaged);
    assert_non_null(strstr(report.reason, "snapshot: checksum mismatch"));
    assert_int_equal(report.snapshot_seq, 0);
    assert_int_equal(report.last_seq, 0);
    assert_int_equal(state.count, 0);
    assert_string_equal(state.snapshot, "");
    assert_int_equal(access(s_file("snapshot.damaged"), F_OK), 0);
    assert_int_equal(access(s_file("log.damaged"), F_OK), 0);
    assert_int_not_equal(access(s_file("snapshot"), F_OK), 0);
    s_append(log, 1, 1);
    zm_replog_destroy(&log);
    log = s_open(&state, &report);
    assert_false(report.damaged);
    assert_int_equal(report.last_seq, 1);
    zm_replog_destroy(&log);

    //  A snapshot file cut short.
    log = s_open(&state, &report);
    assert_int_equal(zm_replog_snapshot(log, 9, "nine", 4), 0);
    zm_replog_destroy(&log);
    assert_int_equal(truncate(s_file("snapshot"), 10), 0);
    log = s_open(&state, &report);
    assert_true(report.damaged);
    assert_int_equal(report.last_seq, 0);
    zm_replog_destroy(&log);
}

//  Checksums good, but the caller cannot use the bytes: the same as damage.
static void
test_refused_snapshot_and_record(void **unused)
{
    (void) unused;
    s_state_t state = {0};
    zm_replog_report_t report;
    zm_replog_t *log = s_open(&state, &report);
    s_append(log, 1, 2);
    assert_int_equal(zm_replog_snapshot(log, 2, "two", 3), 0);
    s_append(log, 3, 8);
    zm_replog_destroy(&log);

    state.fail_at = 6;
    log = s_open(&state, &report);
    assert_true(report.damaged);
    assert_non_null(strstr(report.reason, "does not apply"));
    assert_int_equal(report.last_seq, 5);
    zm_replog_destroy(&log);

    state.fail_at = 0;
    state.refuse_snapshot = true;
    log = s_open(&state, &report);
    assert_true(report.damaged);
    assert_non_null(strstr(report.reason, "is not a state"));
    assert_int_equal(report.last_seq, 0);
    assert_int_equal(state.resets, 1);
    zm_replog_destroy(&log);
}

static void
test_unusable_dir(void **unused)
{
    (void) unused;
    s_state_t state = {0};
    zm_replog_report_t report;
    char error[256] = "";
    assert_null(zm_replog_open("/proc/no/such/dir", s_restore, s_apply, &state, &report, error,
                               sizeof error));
    assert_non_null(strstr(error, "cannot create"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc_check_value),
        cmocka_unit_test_setup_teardown(test_append_and_replay, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_append_refuses_wrong_seq, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_then_log, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_covers_old_records, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_install_peer_snapshot, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_going_back, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_failed_snapshot_changes_nothing, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_flipped_byte, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_junk_log_header, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_damaged_snapshot, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_refused_snapshot_and_record, s_setup, s_teardown),
        cmocka_unit_test(test_unusable_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
