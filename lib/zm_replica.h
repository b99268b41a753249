//  zm_replica - one replica's side of a replicated service, without sockets.
//  It applies the broker's sequenced writes in order and each write id once
//  (a retried write gets the first answer again), keeps the epoch and the
//  sequence number of the last write, persists all of it through zm_replog
//  when given a directory, and makes and installs the snapshots a catching-up
//  replica needs: the service's state plus this bookkeeping, so that a
//  retry is still recognised on a replica that caught up since.
#ifndef ZM_REPLICA_H_INCLUDED
#define ZM_REPLICA_H_INCLUDED

#include "zm_replog.h"
#include "zmesh.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Write ids remembered with their answers, the most recent ones.
#define ZM_REPLICA_REMEMBER 65536

//  The log is compacted into a snapshot once it holds this many bytes.
#define ZM_REPLICA_COMPACT_BYTES (16u * 1024 * 1024)

//  The service's state machine, as the public API has it (zmesh_state_t):
//  handle runs one request, write true for a sequenced write (the same on
//  every replica, in the same order), false for a read; snapshot serialises
//  the whole state (malloc'ed); restore replaces the state with a
//  snapshot's, false (unchanged) if the bytes are not one.
typedef zmesh_state_t zm_replica_service_t;

typedef struct zm_replica zm_replica_t;

//  A replica of service, its state in dir (NULL: in memory only, nothing
//  survives a restart). What was on disk is replayed through the service;
//  report says what was found (damage included: the replica then holds the
//  good prefix and must catch up). NULL with a message in error if dir
//  cannot be used.
zm_replica_t *zm_replica_new(const zm_replica_service_t *service, const char *dir,
                             zm_replog_report_t *report, char *error, size_t error_size);
void zm_replica_destroy(zm_replica_t **self_p);

//  The epoch and sequence number of the last write applied (0, 0 if none).
uint64_t zm_replica_epoch(const zm_replica_t *self);
uint64_t zm_replica_seq(const zm_replica_t *self);

typedef struct {
    int status;                 //  the handler's: ZMESH_OK or its error
    zmesh_msg_t *reply;         //  owned by the caller; NULL for nil
    bool duplicate;             //  a write id seen before: its first answer, not applied again
} zm_replica_answer_t;

//  Applies write seq of epoch. write_id identifies the write across
//  retries (0: never deduplicated). quorum_read: a read sequenced with the
//  writes, which takes a sequence number but changes nothing. Returns
//  ZMESH_OK with answer filled in; ZMESH_EINVAL, nothing changed, when seq
//  is not the last + 1 or epoch is older than the last write's (the caller
//  asks for what it misses); ZMESH_ESYS when the log could not be written
//  (the replica must stop serving: its disk state is behind its memory).
//  The write is durable after zm_replica_sync.
int zm_replica_write(zm_replica_t *self, uint64_t epoch, uint64_t seq, uint64_t write_id,
                     bool quorum_read, const void *body, size_t size,
                     zm_replica_answer_t *answer);

//  Makes the writes applied so far durable; compacts the log when it grew
//  past ZM_REPLICA_COMPACT_BYTES. ZMESH_OK or ZMESH_ESYS.
int zm_replica_sync(zm_replica_t *self);

//  Runs a read on the current state.
void zm_replica_read(zm_replica_t *self, const void *body, size_t size,
                     zm_replica_answer_t *answer);

//  The state to send a catching-up replica: service state, epoch, sequence
//  number and remembered write ids, as one MessagePack array (malloc'ed).
void zm_replica_snapshot(zm_replica_t *self, void **data_p, size_t *size_p);

//  Replaces this replica's state with a snapshot from zm_replica_snapshot
//  (made durable when there is a directory). ZMESH_EINVAL (state unchanged)
//  if the bytes are not one or the service refuses them; ZMESH_ESYS if it
//  could not be written.
int zm_replica_install(zm_replica_t *self, const void *data, size_t size);

//  Write ids remembered now.
size_t zm_replica_remembered(const zm_replica_t *self);

#endif
