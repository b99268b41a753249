//  pipe - helpers of the pipeline integration tests (see pipe.h). Status
//  reads use a fresh client per call, so they never disturb the peers under
//  test. It asserts only on programmer errors, never on what a peer did.
#define _GNU_SOURCE
#include "pipe.h"

#include <czmq.h>
#include <fcntl.h>
#include <inttypes.h>
#include <msgpack.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_STATUS_TIMEOUT_MS 5000      //  one zmesh.status call (a loaded CI machine once took over 2 s)
#define S_ARGV_MAX 40

static const char *s_peer_bin;        //  borrowed from argv

void
zm_pipe_init(int argc, char **argv)
{
    if (argc != 4 || access(argv[3], X_OK) != 0) {
        fprintf(stderr, "usage: %s ZMESH-BROKER TEST-WORKER TEST-PIPE-PEER (all executable)\n",
                argc > 0 ? argv[0] : "test");
        exit(2);
    }
    s_peer_bin = argv[3];
    zm_harness_init(3, argv);
}

bool
zm_pipe_broker(zm_harness_t *harness, const char *const extra[], zm_pipe_broker_t *broker)
{
    assert(harness);
    assert(broker);
    memset(broker, 0, sizeof *broker);
    broker->proc = zm_harness_broker(harness, "tcp://127.0.0.1:*", extra, broker->endpoint,
                                     sizeof broker->endpoint);
    if (!broker->proc)
        return false;
    snprintf(broker->push, sizeof broker->push, "%s", zm_proc_push_endpoint(broker->proc));
    return broker->push[0] != '\0';
}

void
zm_pipe_path(const zm_harness_t *harness, const char *name, char *path, size_t size)
{
    assert(harness && name && path);
    int length = snprintf(path, size, "%s/%s", zm_harness_dir(harness), name);
    assert(length > 0 && (size_t) length < size);
}

//  Builds argv = head..., extra..., NULL.
static void
s_argv(char **argv, char *const head[], size_t head_count, const char *const extra[])
{
    size_t count = 0;
    for (size_t i = 0; i < head_count; i++)
        argv[count++] = head[i];
    for (size_t i = 0; extra && extra[i]; i++) {
        assert(count + 1 < S_ARGV_MAX);
        argv[count++] = (char *) extra[i];
    }
    argv[count] = NULL;
}

zm_proc_t *
zm_pipe_consumer(zm_harness_t *harness, const char *endpoint, const char *pipeline,
                 const char *out_path, const char *const extra[])
{
    assert(harness && endpoint && pipeline && out_path);
    assert(s_peer_bin);               //  zm_pipe_init first
    char *head[] = {(char *) s_peer_bin, "consume", "--broker", (char *) endpoint,
                    "--pipeline", (char *) pipeline, "--out", (char *) out_path};
    char *argv[S_ARGV_MAX];
    s_argv(argv, head, sizeof head / sizeof head[0], extra);
    return zm_harness_spawn(harness, "consumer", argv, false);
}

zm_proc_t *
zm_pipe_producer(zm_harness_t *harness, const char *endpoint, const char *pipeline, long count,
                 const char *const extra[])
{
    assert(harness && endpoint && pipeline);
    assert(s_peer_bin);
    char number[32];
    snprintf(number, sizeof number, "%ld", count);
    char *head[] = {(char *) s_peer_bin, "produce", "--broker", (char *) endpoint,
                    "--pipeline", (char *) pipeline, "--count", number};
    char *argv[S_ARGV_MAX];
    s_argv(argv, head, sizeof head / sizeof head[0], extra);
    return zm_harness_spawn(harness, "producer", argv, true);
}

bool
zm_pipe_producer_done(zm_proc_t *producer, int deadline_ms, char *result, size_t size)
{
    assert(producer && result && size > 0);
    int64_t deadline = zm_harness_now() + deadline_ms;
    int rc = zm_harness_read_line(producer, result, size, deadline_ms);
    if (rc != ZMESH_OK)
        snprintf(result, size, "no result line: %s", zmesh_strerror(rc));
    int64_t left = deadline - zm_harness_now();
    int status = -1;
    if (!zm_harness_reap(producer, left > 1000 ? (int) left : 1000, &status))
        return false;
    char flushed[64];
    snprintf(flushed, sizeof flushed, " flush=%s ", zmesh_strerror(ZMESH_OK));
    return zm_harness_exited_ok(status) && strstr(result, flushed);
}

//  ---------------------------------------------------------------------
//  zmesh.status

static bool
s_key_is(const msgpack_object *key, const char *name)
{
    return key->type == MSGPACK_OBJECT_STR && key->via.str.size == strlen(name)
           && memcmp(key->via.str.ptr, name, key->via.str.size) == 0;
}

static uint64_t
s_uint(const msgpack_object *value)
{
    return value->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? value->via.u64 : 0;
}

//  The sum of the uint values of a map (the drops by reason).
static uint64_t
s_sum(const msgpack_object *map)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; map->type == MSGPACK_OBJECT_MAP && i < map->via.map.size; i++)
        sum += s_uint(&map->via.map.ptr[i].val);
    return sum;
}

//  Fills status from one pipeline's map of figures.
static void
s_read_pipeline(const msgpack_object *entry, zm_pipe_status_t *status)
{
    static const struct {
        const char *name;
        size_t offset;
    } fields[] = {
        {"queued", offsetof(zm_pipe_status_t, queued)},
        {"in_flight", offsetof(zm_pipe_status_t, in_flight)},
        {"delivered", offsetof(zm_pipe_status_t, delivered)},
        {"acked", offsetof(zm_pipe_status_t, acked)},
        {"redelivered", offsetof(zm_pipe_status_t, redelivered)},
        {"consumers", offsetof(zm_pipe_status_t, consumers)},
        {"credit", offsetof(zm_pipe_status_t, credit)},
        {"free_credit", offsetof(zm_pipe_status_t, free_credit)},
        {"waiting_producers", offsetof(zm_pipe_status_t, waiting_producers)},
        {"refused_full", offsetof(zm_pipe_status_t, refused_full)},
    };
    status->known = true;
    for (uint32_t i = 0; i < entry->via.map.size; i++) {
        const msgpack_object *key = &entry->via.map.ptr[i].key;
        const msgpack_object *value = &entry->via.map.ptr[i].val;
        if (s_key_is(key, "drops"))
            status->drops = s_sum(value);
        for (size_t j = 0; j < sizeof fields / sizeof fields[0]; j++)
            if (s_key_is(key, fields[j].name))
                *(uint64_t *) ((char *) status + fields[j].offset) = s_uint(value);
    }
}

//  Finds the pipeline in the pipelines map (name -> figures) or array.
static void
s_find_pipeline(const msgpack_object *pipelines, const char *pipeline, zm_pipe_status_t *status)
{
    if (pipelines->type == MSGPACK_OBJECT_MAP)
        for (uint32_t i = 0; i < pipelines->via.map.size; i++) {
            const msgpack_object *value = &pipelines->via.map.ptr[i].val;
            if (s_key_is(&pipelines->via.map.ptr[i].key, pipeline)
                && value->type == MSGPACK_OBJECT_MAP)
                s_read_pipeline(value, status);
        }
    for (uint32_t i = 0; pipelines->type == MSGPACK_OBJECT_ARRAY && i < pipelines->via.array.size;
         i++) {
        const msgpack_object *entry = &pipelines->via.array.ptr[i];
        for (uint32_t j = 0; entry->type == MSGPACK_OBJECT_MAP && j < entry->via.map.size; j++)
            if (s_key_is(&entry->via.map.ptr[j].key, "name")
                && s_key_is(&entry->via.map.ptr[j].val, pipeline))
                s_read_pipeline(entry, status);
    }
}

//  The sum of the counters whose name starts with "dropped".
static uint64_t
s_broker_drops(const msgpack_object *counters)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; counters->type == MSGPACK_OBJECT_MAP && i < counters->via.map.size;
         i++) {
        const msgpack_object *key = &counters->via.map.ptr[i].key;
        if (key->type == MSGPACK_OBJECT_STR && key->via.str.size >= 7
            && memcmp(key->via.str.ptr, "dropped", 7) == 0)
            sum += s_uint(&counters->via.map.ptr[i].val);
    }
    return sum;
}

static bool
s_decode(const void *data, size_t size, const char *pipeline, zm_pipe_status_t *status)
{
    msgpack_unpacked result;
    msgpack_unpacked_init(&result);
    size_t offset = 0;
    bool ok = msgpack_unpack_next(&result, data, size, &offset) == MSGPACK_UNPACK_SUCCESS
              && offset == size && result.data.type == MSGPACK_OBJECT_MAP;
    for (uint32_t i = 0; ok && i < result.data.via.map.size; i++) {
        const msgpack_object *key = &result.data.via.map.ptr[i].key;
        const msgpack_object *value = &result.data.via.map.ptr[i].val;
        if (s_key_is(key, "pipelines"))
            s_find_pipeline(value, pipeline, status);
        else if (s_key_is(key, "counters"))
            status->broker_drops = s_broker_drops(value);
    }
    msgpack_unpacked_destroy(&result);
    return ok;
}

int
zm_pipe_status(const char *endpoint, const char *pipeline, zm_pipe_status_t *status)
{
    assert(endpoint && pipeline && status);
    memset(status, 0, sizeof *status);
    int rc;
    zmesh_client_t *client = zmesh_client_new(endpoint, &rc);
    if (!client)
        return rc;
    zmesh_msg_t *reply = NULL;
    rc = zmesh_client_call(client, "zmesh.status", "\xc0", 1, S_STATUS_TIMEOUT_MS, &reply);
    if (rc == ZMESH_OK && !s_decode(zmesh_msg_data(reply), zmesh_msg_size(reply), pipeline, status))
        rc = ZMESH_EPROTO;
    zmesh_msg_destroy(&reply);
    zmesh_client_destroy(&client);
    return rc;
}

void
zm_pipe_status_print(const zm_pipe_status_t *status, const char *label)
{
    assert(status && label);
    printf("%s: known=%d queued=%" PRIu64 " in_flight=%" PRIu64 " delivered=%" PRIu64
           " acked=%" PRIu64 " redelivered=%" PRIu64 " consumers=%" PRIu64 " credit=%" PRIu64
           " free_credit=%" PRIu64 " waiting_producers=%" PRIu64 " refused_full=%" PRIu64
           " drops=%" PRIu64 " broker_drops=%" PRIu64 "\n",
           label, status->known, status->queued, status->in_flight, status->delivered,
           status->acked, status->redelivered, status->consumers, status->credit,
           status->free_credit, status->waiting_producers, status->refused_full, status->drops,
           status->broker_drops);
    fflush(stdout);
}

typedef struct {
    const char *endpoint;
    const char *pipeline;
    uint64_t count;
} s_consumers_t;

static bool
s_has_consumers(void *arg)
{
    s_consumers_t *wanted = arg;
    zm_pipe_status_t status;
    return zm_pipe_status(wanted->endpoint, wanted->pipeline, &status) == ZMESH_OK
           && status.known && status.consumers == wanted->count;
}

bool
zm_pipe_wait_consumers(const char *endpoint, const char *pipeline, uint64_t count,
                       int deadline_ms)
{
    s_consumers_t wanted = {endpoint, pipeline, count};
    return zm_harness_wait_until(s_has_consumers, &wanted, deadline_ms);
}

static bool
s_drained(void *arg)
{
    s_consumers_t *wanted = arg;
    zm_pipe_status_t status;
    return zm_pipe_status(wanted->endpoint, wanted->pipeline, &status) == ZMESH_OK
           && status.known && status.queued == 0 && status.in_flight == 0;
}

bool
zm_pipe_wait_drained(const char *endpoint, const char *pipeline, int deadline_ms)
{
    s_consumers_t wanted = {endpoint, pipeline, 0};
    return zm_harness_wait_until(s_drained, &wanted, deadline_ms);
}

//  ---------------------------------------------------------------------
//  record files

void
zm_pipe_tail_init(zm_pipe_tail_t *tail, const char *path)
{
    assert(tail && path);
    memset(tail, 0, sizeof *tail);
    int length = snprintf(tail->path, sizeof tail->path, "%s", path);
    assert(length > 0 && (size_t) length < sizeof tail->path);
}

size_t
zm_pipe_tail_lines(zm_pipe_tail_t *tail)
{
    assert(tail);
    int fd = open(tail->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tail->lines;
    char buffer[65536];
    ssize_t got;
    while ((got = pread(fd, buffer, sizeof buffer, tail->offset)) > 0) {
        for (ssize_t i = 0; i < got; i++)
            tail->lines += buffer[i] == '\n';
        tail->offset += got;
    }
    close(fd);
    return tail->lines;
}

typedef struct {
    zm_pipe_tail_t *tail;
    size_t lines;
} s_lines_t;

static bool
s_has_lines(void *arg)
{
    s_lines_t *wanted = arg;
    return zm_pipe_tail_lines(wanted->tail) >= wanted->lines;
}

bool
zm_pipe_wait_lines(zm_pipe_tail_t *tail, size_t lines, int deadline_ms)
{
    s_lines_t wanted = {tail, lines};
    return zm_harness_wait_until(s_has_lines, &wanted, deadline_ms);
}

static void
s_log_destroy(void **log_p)
{
    zm_pipe_log_t *log = *log_p;
    if (log) {
        free(log->records);
        free(log);
    }
    *log_p = NULL;
}

//  Parses "ID ATTEMPT REDELIVERED N"; false for anything else.
static bool
s_parse_record(const char *line, zm_pipe_record_t *record)
{
    unsigned redelivered;
    int used = 0;
    if (sscanf(line, "%" SCNu64 " %" SCNu32 " %u %" SCNu64 "%n", &record->id, &record->attempt,
               &redelivered, &record->number, &used)
            != 4
        || line[used] != '\0' || redelivered > 1)
        return false;
    record->redelivered = redelivered == 1;
    return true;
}

zm_pipe_log_t *
zm_pipe_log_load(zm_harness_t *harness, const char *path)
{
    assert(harness && path);
    zm_pipe_log_t *log = calloc(1, sizeof *log);
    assert(log);
    zm_harness_adopt(harness, log, s_log_destroy);
    FILE *file = fopen(path, "r");
    if (!file)
        return log;
    size_t room = 0;
    char line[256];
    while (fgets(line, sizeof line, file)) {
        line[strcspn(line, "\n")] = '\0';
        zm_pipe_record_t record;
        if (!s_parse_record(line, &record)) {
            log->bad_lines++;
            continue;
        }
        if (log->count == room) {
            room = room ? room * 2 : 1024;
            log->records = realloc(log->records, room * sizeof *log->records);
            assert(log->records);
        }
        log->records[log->count++] = record;
    }
    fclose(file);
    return log;
}

bool
zm_pipe_log_in_order(const zm_pipe_log_t *log, uint64_t first, size_t count, char *why,
                     size_t size)
{
    assert(log && why && size > 0);
    snprintf(why, size, "in order");
    if (log->bad_lines > 0) {
        snprintf(why, size, "%zu unreadable lines", log->bad_lines);
        return false;
    }
    for (size_t i = 0; i < log->count && i < count; i++) {
        const zm_pipe_record_t *record = &log->records[i];
        if (record->number != first + i || record->attempt != 1 || record->redelivered) {
            snprintf(why, size,
                     "record %zu: number %" PRIu64 " attempt %" PRIu32 " (expected %" PRIu64
                     " attempt 1)",
                     i, record->number, record->attempt, first + i);
            return false;
        }
    }
    if (log->count != count) {
        snprintf(why, size, "%zu records, expected %zu", log->count, count);
        return false;
    }
    return true;
}

//  Judges one record of the stream; false (with why) if it breaks the order.
static bool
s_next_in_order(const zm_pipe_record_t *record, uint64_t total, uint8_t *seen, uint64_t *next_p,
                size_t *skipped_p, char *why, size_t size)
{
    uint64_t n = record->number;
    if (n == 0 || n > total) {
        snprintf(why, size, "number %" PRIu64 " out of range", n);
        return false;
    }
    if (seen[n] && record->attempt > 1) {
        (*skipped_p)++;
        return true;
    }
    if (seen[n] || n != *next_p) {
        snprintf(why, size, "%" PRIu64 " (attempt %" PRIu32 ") where %" PRIu64 " was next", n,
                 record->attempt, *next_p);
        return false;
    }
    seen[n] = 1;
    (*next_p)++;
    return true;
}

bool
zm_pipe_logs_in_order(const zm_pipe_log_t *const logs[], size_t log_count, uint64_t total,
                      size_t *skipped_p, char *why, size_t size)
{
    assert(logs && skipped_p && why && size > 0);
    uint8_t *seen = calloc(total + 1, 1);
    assert(seen);
    uint64_t next = 1;
    *skipped_p = 0;
    bool ok = true;
    char detail[192] = "";
    for (size_t j = 0; ok && j < log_count; j++)
        for (size_t i = 0; ok && i < logs[j]->count; i++) {
            ok = s_next_in_order(&logs[j]->records[i], total, seen, &next, skipped_p, detail,
                                 sizeof detail);
            if (!ok)
                snprintf(why, size, "log %zu record %zu: %s", j, i, detail);
        }
    free(seen);
    if (ok && next != total + 1) {
        snprintf(why, size, "the stream ends before %" PRIu64, next);
        ok = false;
    }
    if (ok)
        snprintf(why, size, "in order, %zu redelivered skipped", *skipped_p);
    return ok;
}

bool
zm_pipe_log_has(const zm_pipe_log_t *log, uint64_t number)
{
    assert(log);
    for (size_t i = 0; i < log->count; i++)
        if (log->records[i].number == number)
            return true;
    return false;
}

void
zm_pipe_tally(const zm_pipe_log_t *const logs[], size_t log_count, uint64_t total,
              zm_pipe_tally_t *tally)
{
    assert(logs && tally);
    memset(tally, 0, sizeof *tally);
    uint32_t *seen = calloc(total + 1, sizeof *seen);
    uint32_t *first_tries = calloc(total + 1, sizeof *first_tries);
    assert(seen && first_tries);
    for (size_t j = 0; j < log_count; j++) {
        tally->bad_lines += logs[j]->bad_lines;
        for (size_t i = 0; i < logs[j]->count; i++) {
            const zm_pipe_record_t *record = &logs[j]->records[i];
            tally->records++;
            tally->flag_mismatches += record->redelivered != (record->attempt > 1);
            if (record->number == 0 || record->number > total) {
                tally->out_of_range++;
                continue;
            }
            tally->duplicates += seen[record->number]++ > 0;
            tally->unflagged_repeats += record->attempt == 1 && first_tries[record->number]++ > 0;
        }
    }
    for (uint64_t n = 1; n <= total; n++) {
        tally->distinct += seen[n] > 0;
        if (seen[n] == 0 && tally->missing++ == 0)
            tally->first_missing = n;
    }
    free(first_tries);
    free(seen);
}

void
zm_pipe_tally_print(const zm_pipe_tally_t *tally, const char *label)
{
    assert(tally && label);
    printf("%s: records=%zu distinct=%zu missing=%zu (first %" PRIu64 ") duplicates=%zu"
           " out_of_range=%zu unflagged_repeats=%zu flag_mismatches=%zu bad_lines=%zu\n",
           label, tally->records, tally->distinct, tally->missing, tally->first_missing,
           tally->duplicates, tally->out_of_range, tally->unflagged_repeats,
           tally->flag_mismatches, tally->bad_lines);
    fflush(stdout);
}

uint64_t
zm_pipe_rss_kb(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int) pid);
    FILE *file = fopen(path, "r");
    if (!file)
        return 0;
    char line[256];
    uint64_t kb = 0;
    while (fgets(line, sizeof line, file))
        if (sscanf(line, "VmRSS: %" SCNu64 " kB", &kb) == 1)
            break;
    fclose(file);
    return kb;
}
