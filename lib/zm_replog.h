//  zm_replog - a replica's state on disk, in one directory: an append-only
//  log of writes ("log"), each record with its sequence number and a
//  CRC-32C, and a snapshot of the whole state at one sequence number
//  ("snapshot"). Opening replays the snapshot and then the log records after
//  it through the caller's callbacks, checking every byte; whatever cannot be
//  read back exactly is reported as damage and cut off, so the caller serves
//  only what was written whole and fetches the rest from a peer. Appends are
//  durable once zm_replog_sync returns: a write is acknowledged after that.
//  No sockets, no threads, no policy on when to snapshot.
#ifndef ZM_REPLOG_H_INCLUDED
#define ZM_REPLOG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct zm_replog zm_replog_t;

//  The largest record or snapshot accepted, in bytes: a length field above it
//  is damage, not a reason to allocate.
#define ZM_REPLOG_RECORD_MAX (64u * 1024 * 1024)
#define ZM_REPLOG_SNAPSHOT_MAX (1024u * 1024 * 1024)

typedef struct {
    uint64_t snapshot_seq;      //  the snapshot restored, 0 if none
    uint64_t last_seq;          //  the last sequence number restored or replayed
    size_t records;             //  log records replayed (after the snapshot)
    bool damaged;               //  something could not be read back whole: the state
                                //  is good up to last_seq only, the rest is lost here
    bool torn_tail;             //  the damage is only an incomplete last record, which
                                //  an interrupted append leaves (never acknowledged)
    char reason[256];           //  what was wrong, when damaged
} zm_replog_report_t;

//  Called once with the snapshot's bytes, before any record; false means the
//  bytes do not make a state (treated as a damaged snapshot). Called with
//  seq 0 and no data to throw away what an earlier call restored: the state
//  starts empty.
typedef bool(zm_replog_restore_fn)(void *arg, uint64_t seq, const uint8_t *data, size_t size);

//  Called for each good record after the snapshot, in sequence order; false
//  means the record does not apply (treated as damage at that record).
typedef bool(zm_replog_apply_fn)(void *arg, uint64_t seq, const uint8_t *data, size_t size);

//  Opens (creating it if needed) the state in dir and replays it. On damage
//  the files are repaired so that appends can go on: the log is cut after
//  its last good record (the bytes cut off are kept in "log.damaged"); a damaged snapshot is renamed "snapshot.damaged"
//  and the log, which built on it, "log.damaged", and the state starts
//  empty. Returns NULL, with a message in error, only when dir cannot be
//  used at all.
zm_replog_t *zm_replog_open(const char *dir, zm_replog_restore_fn *restore,
                            zm_replog_apply_fn *apply, void *arg, zm_replog_report_t *report,
                            char *error, size_t error_size);

void zm_replog_destroy(zm_replog_t **self_p);

//  Appends record seq, which must be the last sequence number + 1. Written,
//  not yet durable. Returns 0, or -1 with errno (EINVAL for a wrong seq or
//  size; an I/O error leaves the log as it was before the call, or marks the
//  log broken: every later call fails with EIO).
int zm_replog_append(zm_replog_t *self, uint64_t seq, const void *data, size_t size);

//  Makes every append so far durable (fdatasync). Returns 0 or -1 with errno.
int zm_replog_sync(zm_replog_t *self);

//  Replaces the state with a durable snapshot at seq and empties the log.
//  Used to compact the log (seq = the last sequence number) and to install
//  a peer's snapshot during catch-up, which may be behind this replica when
//  this one holds writes the others never got (the log is emptied first
//  then, so a crash cannot replay them on top of the new snapshot). Returns
//  0 or -1 with errno. A failure to write the new snapshot changes
//  nothing; a failure after that (cutting the log, the rename) marks the
//  log broken: every later call fails, so nothing more is acknowledged.
int zm_replog_snapshot(zm_replog_t *self, uint64_t seq, const void *data, size_t size);

uint64_t zm_replog_last_seq(const zm_replog_t *self);

//  Bytes in the log file: the caller snapshots when it grew large enough.
uint64_t zm_replog_log_bytes(const zm_replog_t *self);

#endif
