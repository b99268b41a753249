//  zm_replica - a replica's ordering, exactly-once and persistence.
//
//  Log record:  [epoch, kind, write_id, body]     (kind 0 write, 1 quorum read)
//  Snapshot:    ["zmreplica1", epoch, seq, state, remembered]
//               remembered: [[write_id, seq, status, reply], ...] oldest first,
//               reply a bin or nil.
//  All MessagePack. A duplicate write is logged like any other, so a replay
//  makes the same decisions in the same order.
#include "zm_replica.h"

#include "zm_alloc.h"
#include "zm_hash.h"
#include "zm_pack.h"

#include <assert.h>
#include <czmq.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#define S_SNAPSHOT_TAG "zmreplica1"

//  A write id remembered with its first answer.
typedef struct {
    uint64_t id;
    uint64_t seq;
    int status;
    zmesh_msg_t *reply;         //  owned; NULL for nil
} s_memo_t;

struct zm_replica {
    zm_replica_service_t service;
    zm_replog_t *log;           //  owned; NULL without a directory
    uint64_t epoch;             //  of the last write
    uint64_t seq;               //  of the last write
    zhashx_t *memos;            //  write id -> borrowed s_memo_t
    zlistx_t *memo_order;       //  owned s_memo_t, oldest first
    void *empty;                //  owned: the service's state before any write
    size_t empty_size;
};

static void
s_memo_destroy(void **item_p)
{
    s_memo_t *memo = *item_p;
    if (memo) {
        zmesh_msg_destroy(&memo->reply);
        free(memo);
        *item_p = NULL;
    }
}

static void
s_forget_all(zm_replica_t *self)
{
    zhashx_purge(self->memos);
    zlistx_purge(self->memo_order);
}

//  Remembers write id's answer (a copy), forgetting the oldest past the bound.
static void
s_remember(zm_replica_t *self, uint64_t id, uint64_t seq, int status, const zmesh_msg_t *reply)
{
    if (id == 0 || zm_hash_lookup(self->memos, id))
        return;                     //  (a snapshot from a peer may list an id twice)
    s_memo_t *memo = zm_alloc(sizeof *memo);
    memo->id = id;
    memo->seq = seq;
    memo->status = status;
    if (reply)
        memo->reply = zmesh_msg_new(zmesh_msg_data(reply), zmesh_msg_size(reply));
    zlistx_add_end(self->memo_order, memo);
    zhashx_insert(self->memos, ZM_HASH_KEY(id), memo);
    if (zlistx_size(self->memo_order) > ZM_REPLICA_REMEMBER) {
        s_memo_t *oldest = zlistx_first(self->memo_order);
        zhashx_delete(self->memos, ZM_HASH_KEY(oldest->id));
        zlistx_delete(self->memo_order, zlistx_cursor(self->memo_order));
    }
}

//  Applies a write to memory (no log): the common part of a live write and
//  of a replayed record. answer may be NULL (replay).
static void
s_apply(zm_replica_t *self, uint64_t epoch, uint64_t seq, uint64_t id, bool quorum_read,
        const void *body, size_t size, zm_replica_answer_t *answer)
{
    zm_replica_answer_t local = {0};
    zm_replica_answer_t *out = answer ? answer : &local;
    memset(out, 0, sizeof *out);
    s_memo_t *memo = quorum_read ? NULL : zm_hash_lookup(self->memos, id);
    if (memo) {
        out->duplicate = true;
        out->status = memo->status;
        if (memo->reply)
            out->reply = zmesh_msg_new(zmesh_msg_data(memo->reply), zmesh_msg_size(memo->reply));
    }
    else {
        out->status = self->service.handle(self->service.arg, !quorum_read, body, size,
                                           &out->reply);
        if (!quorum_read)
            s_remember(self, id, seq, out->status, out->reply);
    }
    self->epoch = epoch;
    self->seq = seq;
    if (!answer)
        zmesh_msg_destroy(&local.reply);
}

//  The record of a write, malloc'ed.
static void
s_encode_record(uint64_t epoch, uint64_t id, bool quorum_read, const void *body, size_t size,
                msgpack_sbuffer *buffer)
{
    msgpack_sbuffer_init(buffer);
    msgpack_packer packer;
    msgpack_packer_init(&packer, buffer, msgpack_sbuffer_write);
    msgpack_pack_array(&packer, 4);
    msgpack_pack_uint64(&packer, epoch);
    msgpack_pack_uint8(&packer, quorum_read ? 1 : 0);
    msgpack_pack_uint64(&packer, id);
    msgpack_pack_bin(&packer, size);
    msgpack_pack_bin_body(&packer, body, size);
}

static bool
s_get_u64(const msgpack_object *object, uint64_t *value_p)
{
    if (object->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return false;
    *value_p = object->via.u64;
    return true;
}

//  zm_replog_apply_fn: a record read back from the log.
static bool
s_replay(void *arg, uint64_t seq, const uint8_t *data, size_t size)
{
    zm_replica_t *self = arg;
    msgpack_unpacked unpacked;
    msgpack_unpacked_init(&unpacked);
    size_t offset = 0;
    uint64_t epoch, kind, id;
    const msgpack_object *fields = NULL;
    bool ok = zm_pack_check(data, size, 0) == ZMESH_OK
              && msgpack_unpack_next(&unpacked, (const char *) data, size, &offset)
                     == MSGPACK_UNPACK_SUCCESS
              && offset == size && unpacked.data.type == MSGPACK_OBJECT_ARRAY
              && unpacked.data.via.array.size == 4;
    if (ok) {
        fields = unpacked.data.via.array.ptr;
        ok = s_get_u64(&fields[0], &epoch) && s_get_u64(&fields[1], &kind) && kind <= 1
             && s_get_u64(&fields[2], &id) && fields[3].type == MSGPACK_OBJECT_BIN
             && epoch >= self->epoch;
    }
    if (ok)
        s_apply(self, epoch, seq, id, kind == 1, fields[3].via.bin.ptr, fields[3].via.bin.size,
                NULL);
    msgpack_unpacked_destroy(&unpacked);
    return ok;
}

//  Parsed snapshot, borrowing from the unpacked object.
typedef struct {
    uint64_t epoch, seq;
    const msgpack_object_bin *state;
    const msgpack_object_array *memos;
} s_snapshot_t;

static bool
s_parse_snapshot(const msgpack_object *root, s_snapshot_t *snapshot)
{
    if (root->type != MSGPACK_OBJECT_ARRAY || root->via.array.size != 5)
        return false;
    const msgpack_object *fields = root->via.array.ptr;
    if (fields[0].type != MSGPACK_OBJECT_STR || fields[0].via.str.size != strlen(S_SNAPSHOT_TAG)
        || memcmp(fields[0].via.str.ptr, S_SNAPSHOT_TAG, fields[0].via.str.size) != 0
        || !s_get_u64(&fields[1], &snapshot->epoch) || !s_get_u64(&fields[2], &snapshot->seq)
        || fields[3].type != MSGPACK_OBJECT_BIN || fields[4].type != MSGPACK_OBJECT_ARRAY)
        return false;
    snapshot->state = &fields[3].via.bin;
    snapshot->memos = &fields[4].via.array;
    for (uint32_t i = 0; i < snapshot->memos->size; i++) {
        const msgpack_object *memo = &snapshot->memos->ptr[i];
        uint64_t value;
        if (memo->type != MSGPACK_OBJECT_ARRAY || memo->via.array.size != 4
            || !s_get_u64(&memo->via.array.ptr[0], &value) || value == 0
            || !s_get_u64(&memo->via.array.ptr[1], &value)
            || (memo->via.array.ptr[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER
                && memo->via.array.ptr[2].type != MSGPACK_OBJECT_NEGATIVE_INTEGER)
            || (memo->via.array.ptr[3].type != MSGPACK_OBJECT_BIN
                && memo->via.array.ptr[3].type != MSGPACK_OBJECT_NIL))
            return false;
    }
    return true;
}

//  Replaces the in-memory state with the snapshot's; false (unchanged) if
//  the bytes are not a snapshot or the service refuses its state.
static bool
s_load_snapshot(zm_replica_t *self, const void *data, size_t size, uint64_t *seq_p)
{
    msgpack_unpacked unpacked;
    msgpack_unpacked_init(&unpacked);
    size_t offset = 0;
    s_snapshot_t snapshot;
    bool ok = data && zm_pack_check(data, size, 0) == ZMESH_OK    //  bounds hostile counts
              && msgpack_unpack_next(&unpacked, data, size, &offset) == MSGPACK_UNPACK_SUCCESS
              && offset == size && s_parse_snapshot(&unpacked.data, &snapshot)
              && self->service.restore(self->service.arg, snapshot.state->ptr,
                                       snapshot.state->size);
    if (ok) {
        s_forget_all(self);
        for (uint32_t i = 0; i < snapshot.memos->size; i++) {
            const msgpack_object *memo = snapshot.memos->ptr[i].via.array.ptr;
            zmesh_msg_t *reply = memo[3].type == MSGPACK_OBJECT_BIN
                                     ? zmesh_msg_new(memo[3].via.bin.ptr, memo[3].via.bin.size)
                                     : NULL;
            s_remember(self, memo[0].via.u64, memo[1].via.u64, (int) memo[2].via.i64, reply);
            zmesh_msg_destroy(&reply);
        }
        self->epoch = snapshot.epoch;
        self->seq = snapshot.seq;
        *seq_p = snapshot.seq;
    }
    msgpack_unpacked_destroy(&unpacked);
    return ok;
}

//  zm_replog_restore_fn: the snapshot on disk, or (seq 0, no data) a reset.
static bool
s_restore(void *arg, uint64_t seq, const uint8_t *data, size_t size)
{
    zm_replica_t *self = arg;
    if (seq == 0 && !data) {
        bool ok = self->service.restore(self->service.arg, self->empty, self->empty_size);
        assert(ok);                 //  the service made these bytes itself
        (void) ok;
        s_forget_all(self);
        self->epoch = 0;
        self->seq = 0;
        return true;
    }
    uint64_t snapshot_seq = 0;
    return s_load_snapshot(self, data, size, &snapshot_seq) && snapshot_seq == seq;
}

zm_replica_t *
zm_replica_new(const zm_replica_service_t *service, const char *dir, zm_replog_report_t *report,
               char *error, size_t error_size)
{
    assert(service && service->handle && service->snapshot && service->restore);
    zm_replica_t *self = zm_alloc(sizeof *self);
    self->service = *service;
    self->memos = zm_hash_new_u64();
    self->memo_order = zlistx_new();
    zlistx_set_destructor(self->memo_order, s_memo_destroy);
    service->snapshot(service->arg, &self->empty, &self->empty_size);
    zm_replog_report_t unused;
    if (!report)
        report = &unused;
    memset(report, 0, sizeof *report);
    if (dir) {
        self->log = zm_replog_open(dir, s_restore, s_replay, self, report, error, error_size);
        if (!self->log) {
            zm_replica_destroy(&self);
            return NULL;
        }
    }
    return self;
}

void
zm_replica_destroy(zm_replica_t **self_p)
{
    assert(self_p);
    zm_replica_t *self = *self_p;
    if (!self)
        return;
    zm_replog_destroy(&self->log);
    zhashx_destroy(&self->memos);
    zlistx_destroy(&self->memo_order);
    free(self->empty);
    free(self);
    *self_p = NULL;
}

uint64_t
zm_replica_epoch(const zm_replica_t *self)
{
    return self->epoch;
}

uint64_t
zm_replica_seq(const zm_replica_t *self)
{
    return self->seq;
}

size_t
zm_replica_remembered(const zm_replica_t *self)
{
    return zlistx_size(self->memo_order);
}

int
zm_replica_write(zm_replica_t *self, uint64_t epoch, uint64_t seq, uint64_t write_id,
                 bool quorum_read, const void *body, size_t size, zm_replica_answer_t *answer)
{
    assert(self && answer);
    memset(answer, 0, sizeof *answer);
    if (seq != self->seq + 1 || epoch < self->epoch)
        return ZMESH_EINVAL;
    if (self->log) {
        msgpack_sbuffer record;
        s_encode_record(epoch, write_id, quorum_read, body, size, &record);
        int rc = zm_replog_append(self->log, seq, record.data, record.size);
        msgpack_sbuffer_destroy(&record);
        if (rc != 0)
            return ZMESH_ESYS;
    }
    s_apply(self, epoch, seq, write_id, quorum_read, body, size, answer);
    return ZMESH_OK;
}

void
zm_replica_snapshot(zm_replica_t *self, void **data_p, size_t *size_p)
{
    void *state;
    size_t state_size;
    self->service.snapshot(self->service.arg, &state, &state_size);
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init(&buffer);
    msgpack_packer packer;
    msgpack_packer_init(&packer, &buffer, msgpack_sbuffer_write);
    msgpack_pack_array(&packer, 5);
    msgpack_pack_str(&packer, strlen(S_SNAPSHOT_TAG));
    msgpack_pack_str_body(&packer, S_SNAPSHOT_TAG, strlen(S_SNAPSHOT_TAG));
    msgpack_pack_uint64(&packer, self->epoch);
    msgpack_pack_uint64(&packer, self->seq);
    msgpack_pack_bin(&packer, state_size);
    msgpack_pack_bin_body(&packer, state, state_size);
    free(state);
    msgpack_pack_array(&packer, zlistx_size(self->memo_order));
    for (s_memo_t *memo = zlistx_first(self->memo_order); memo;
         memo = zlistx_next(self->memo_order)) {
        msgpack_pack_array(&packer, 4);
        msgpack_pack_uint64(&packer, memo->id);
        msgpack_pack_uint64(&packer, memo->seq);
        msgpack_pack_int(&packer, memo->status);
        if (memo->reply) {
            msgpack_pack_bin(&packer, zmesh_msg_size(memo->reply));
            msgpack_pack_bin_body(&packer, zmesh_msg_data(memo->reply),
                                  zmesh_msg_size(memo->reply));
        }
        else
            msgpack_pack_nil(&packer);
    }
    *size_p = buffer.size;
    *data_p = msgpack_sbuffer_release(&buffer);
}

int
zm_replica_sync(zm_replica_t *self)
{
    assert(self);
    if (!self->log)
        return ZMESH_OK;
    if (zm_replog_sync(self->log) != 0)
        return ZMESH_ESYS;
    if (zm_replog_log_bytes(self->log) < ZM_REPLICA_COMPACT_BYTES)
        return ZMESH_OK;
    void *data;
    size_t size;
    zm_replica_snapshot(self, &data, &size);
    int rc = zm_replog_snapshot(self->log, self->seq, data, size);
    free(data);
    return rc == 0 ? ZMESH_OK : ZMESH_ESYS;
}

void
zm_replica_read(zm_replica_t *self, const void *body, size_t size, zm_replica_answer_t *answer)
{
    assert(self && answer);
    memset(answer, 0, sizeof *answer);
    answer->status = self->service.handle(self->service.arg, false, body, size, &answer->reply);
}

int
zm_replica_install(zm_replica_t *self, const void *data, size_t size)
{
    assert(self);
    uint64_t seq = 0;
    if (!s_load_snapshot(self, data, size, &seq))
        return ZMESH_EINVAL;
    if (self->log && zm_replog_snapshot(self->log, seq, data, size) != 0)
        return ZMESH_ESYS;
    return ZMESH_OK;
}
