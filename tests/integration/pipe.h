//  pipe - helpers of the pipeline integration tests (ZMP.md section 16),
//  beside the harness: a broker with its push endpoint, the test-pipe-peer
//  producer and consumer processes, the pipeline part of zmesh.status, the
//  consumers' record files (what each saw: id, attempt, number) read back
//  and checked, and a process's resident memory. Like the harness it
//  reports and never asserts on what a peer did: the tests assert.
#ifndef ZM_PIPE_H_INCLUDED
#define ZM_PIPE_H_INCLUDED

#include "harness.h"
#include "zmesh.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ZM_PIPE_ENDPOINT_MAX 256
#define ZM_PIPE_PATH_MAX 512

//  Takes the program paths from the test's command line: argv[1]
//  zmesh-broker, argv[2] test-worker, argv[3] test-pipe-peer. Exits with 2
//  on bad usage. Calls zm_harness_init.
void zm_pipe_init(int argc, char **argv);

//  A broker with its endpoints.
typedef struct {
    zm_proc_t *proc;                  //  owned by the harness
    char endpoint[ZM_PIPE_ENDPOINT_MAX];    //  its ROUTER
    char push[ZM_PIPE_ENDPOINT_MAX];  //  its push endpoint (PULL)
} zm_pipe_broker_t;

//  Starts a broker on tcp://127.0.0.1:* with its push endpoint on
//  tcp://127.0.0.1:* and the NULL-terminated extra flags (may be NULL).
//  False if it printed no endpoints.
bool zm_pipe_broker(zm_harness_t *harness, const char *const extra[], zm_pipe_broker_t *broker);

//  A path in the test's directory: DIR/name.
void zm_pipe_path(const zm_harness_t *harness, const char *name, char *path, size_t size);

//  Starts `test-pipe-peer consume` of pipeline, recording into out_path,
//  with extra flags (--credit N, --slow-ms MS, ...; may be NULL).
zm_proc_t *zm_pipe_consumer(zm_harness_t *harness, const char *endpoint, const char *pipeline,
                            const char *out_path, const char *const extra[]);

//  Starts `test-pipe-peer produce` of count messages into pipeline with extra
//  flags (--mode, --async, --pad, ...; may be NULL); its stdout is piped.
zm_proc_t *zm_pipe_producer(zm_harness_t *harness, const char *endpoint, const char *pipeline,
                            long count, const char *const extra[]);

//  Waits at most deadline_ms for a producer's result line and its exit;
//  the line goes to result (cut to size). True if it exited 0 and its flush
//  returned ZMESH_OK, which means every send and the flush did.
bool zm_pipe_producer_done(zm_proc_t *producer, int deadline_ms, char *result, size_t size);

//  What zmesh.status says about one pipeline (ZMP.md 16.9), and the
//  broker's drop counters.
typedef struct {
    bool known;                       //  the broker listed the pipeline
    uint64_t queued;
    uint64_t in_flight;
    uint64_t delivered;
    uint64_t acked;
    uint64_t redelivered;
    uint64_t consumers;
    uint64_t credit;
    uint64_t free_credit;
    uint64_t waiting_producers;
    uint64_t refused_full;
    uint64_t drops;                   //  the sum of the pipeline's drops map
    uint64_t broker_drops;            //  the sum of the broker's dropped_* counters
} zm_pipe_status_t;

//  Calls zmesh.status and decodes the pipeline's entry (the pipelines map is
//  keyed by name; an array of maps with a "name" is read too). Returns
//  ZMESH_OK (status->known says whether the pipeline was listed), the
//  call's error, or ZMESH_EPROTO for a reply that is not a map.
int zm_pipe_status(const char *endpoint, const char *pipeline, zm_pipe_status_t *status);

//  Prints the status on one line, after label.
void zm_pipe_status_print(const zm_pipe_status_t *status, const char *label);

//  Waits until the broker lists count consumers of pipeline.
bool zm_pipe_wait_consumers(const char *endpoint, const char *pipeline, uint64_t count,
                            int deadline_ms);

//  Waits until the pipeline holds nothing: none queued, none in flight.
bool zm_pipe_wait_drained(const char *endpoint, const char *pipeline, int deadline_ms);

//  Counts the lines of a growing file, reading only what is new each time.
typedef struct {
    char path[ZM_PIPE_PATH_MAX];
    off_t offset;                     //  bytes read so far
    size_t lines;                     //  newlines in them
} zm_pipe_tail_t;

void zm_pipe_tail_init(zm_pipe_tail_t *tail, const char *path);

//  Reads what was appended since the last call; returns the line count.
size_t zm_pipe_tail_lines(zm_pipe_tail_t *tail);

//  Waits until the file has at least lines lines.
bool zm_pipe_wait_lines(zm_pipe_tail_t *tail, size_t lines, int deadline_ms);

//  One line of a consumer's record file.
typedef struct {
    uint64_t id;                      //  message id
    uint32_t attempt;
    bool redelivered;                 //  what the library said
    uint64_t number;                  //  the message's number (0: unreadable body)
} zm_pipe_record_t;

//  A consumer's record file, read whole.
typedef struct {
    zm_pipe_record_t *records;        //  owned, in file order
    size_t count;
    size_t bad_lines;                 //  lines that are not four numbers
} zm_pipe_log_t;

//  Reads the file at path (a missing file reads as empty). The log is
//  owned by the harness (freed in teardown, even after a failed assert).
zm_pipe_log_t *zm_pipe_log_load(zm_harness_t *harness, const char *path);

//  True if the log holds exactly first, first+1, ... first+count-1, in that
//  order, each delivered once (attempt 1). Otherwise writes why.
bool zm_pipe_log_in_order(const zm_pipe_log_t *log, uint64_t first, size_t count, char *why,
                          size_t size);

//  True if the logs, read one after the other, hold 1..total in order once
//  the redelivered records (attempt > 1) of numbers already read are
//  skipped: what one consumer after another makes of a stream from one
//  producer (ZMP.md 16.3). *skipped_p gets how many were skipped.
//  Otherwise writes why.
bool zm_pipe_logs_in_order(const zm_pipe_log_t *const logs[], size_t log_count, uint64_t total,
                           size_t *skipped_p, char *why, size_t size);

//  Sightings of the numbers 1..total over several consumers' logs.
typedef struct {
    size_t records;                   //  lines in all logs
    size_t distinct;                  //  numbers of 1..total seen at least once
    size_t missing;                   //  numbers of 1..total seen by nobody
    uint64_t first_missing;           //  the smallest of them, 0 if none
    size_t duplicates;                //  sightings beyond the first of a number
    size_t out_of_range;              //  sightings of 0 or a number above total
    size_t unflagged_repeats;         //  more than one sighting with attempt 1
    size_t flag_mismatches;           //  redelivered != (attempt > 1)
    size_t bad_lines;
} zm_pipe_tally_t;

void zm_pipe_tally(const zm_pipe_log_t *const logs[], size_t log_count, uint64_t total,
                   zm_pipe_tally_t *tally);

void zm_pipe_tally_print(const zm_pipe_tally_t *tally, const char *label);

//  True if number appears in log (a linear search: logs here are small).
bool zm_pipe_log_has(const zm_pipe_log_t *log, uint64_t number);

//  The resident set size (VmRSS) of a process in KiB, 0 if unreadable.
uint64_t zm_pipe_rss_kb(pid_t pid);

#endif
