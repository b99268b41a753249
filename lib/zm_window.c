//  zm_window - the producer's window of unsettled messages. The messages
//  not accepted yet sit in a ring in seq order; seqs there are consecutive,
//  so a seq finds its message by subtraction. A message refused for good
//  stays in the ring as a tombstone until the ones before it settle, so the
//  seqs stay consecutive. Accepted messages that wait for DONE move to a
//  table by seq and give their body back.
#include "zm_window.h"

#include "zm_alloc.h"
#include "zm_hash.h"
#include "zm_proto.h"
#include "zmesh.h"

#define S_ERROR_MAX 320

typedef struct {
    uint64_t token;             //  the producer's count of sends
    uint64_t seq;               //  on the current connection
    int mode;                   //  ZMESH_QUEUED, _ACCEPTED or _PROCESSED
    bool failed;                //  refused for good: a tombstone in the ring
    zframe_t *body;             //  owned until accepted
} s_entry_t;

struct zm_window {
    s_entry_t **ring;           //  owned entries not accepted yet, oldest at head
    size_t capacity;            //  slots in ring
    size_t head;                //  index of the oldest entry
    size_t count;               //  entries in ring, tombstones included
    size_t cursor;              //  offset from head of the first entry to send
    size_t live;                //  entries in ring that are not tombstones
    uint64_t next_seq;          //  seq of the next entry added
    uint64_t sent_seq;          //  highest seq sent on this connection (0: none)
    uint64_t next_token;        //  token of the next entry added
    zhashx_t *awaiting;         //  seq -> owned s_entry_t accepted, waiting for DONE
    uint64_t watch_token;       //  the entry a send waits for (0: none)
    zm_window_stage_t watch_stage;
    int watch_rc;
    int first_rc;               //  first failure of an unwatched entry since the last take
    char first_text[S_ERROR_MAX];
    char error[S_ERROR_MAX];    //  text of the failure reported last
};

static void
s_entry_destroy(s_entry_t **entry_p)
{
    s_entry_t *entry = *entry_p;
    if (entry) {
        zframe_destroy(&entry->body);
        free(entry);
    }
    *entry_p = NULL;
}

static void
s_entry_free(void **item_p)
{
    s_entry_destroy((s_entry_t **) item_p);
}

zm_window_t *
zm_window_new(void)
{
    zm_window_t *self = zm_alloc(sizeof *self);
    self->capacity = 64;
    self->ring = zm_alloc(sizeof *self->ring * self->capacity);
    self->next_seq = 1;
    self->next_token = 1;
    self->awaiting = zm_hash_new_u64();
    zhashx_set_destructor(self->awaiting, s_entry_free);
    return self;
}

static s_entry_t *
s_at(const zm_window_t *self, size_t offset)
{
    return self->ring[(self->head + offset) % self->capacity];
}

void
zm_window_destroy(zm_window_t **self_p)
{
    assert(self_p);
    zm_window_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++)
        s_entry_destroy(&self->ring[(self->head + i) % self->capacity]);
    free(self->ring);
    zhashx_destroy(&self->awaiting);
    free(self);
    *self_p = NULL;
}

static void
s_grow(zm_window_t *self)
{
    size_t capacity = self->capacity * 2;
    s_entry_t **ring = zm_alloc(sizeof *ring * capacity);
    for (size_t i = 0; i < self->count; i++)
        ring[i] = s_at(self, i);
    free(self->ring);
    self->ring = ring;
    self->capacity = capacity;
    self->head = 0;
}

uint64_t
zm_window_add(zm_window_t *self, zframe_t **body_p, int mode)
{
    assert(self);
    assert(body_p && *body_p);
    assert(mode >= ZMESH_QUEUED && mode <= ZMESH_PROCESSED);
    if (self->count == self->capacity)
        s_grow(self);
    s_entry_t *entry = zm_alloc(sizeof *entry);
    entry->token = self->next_token++;
    entry->seq = self->next_seq++;
    entry->mode = mode;
    entry->body = *body_p;
    *body_p = NULL;
    self->ring[(self->head + self->count) % self->capacity] = entry;
    self->count++;
    self->live++;
    return entry->token;
}

//  Moves the cursor past tombstones: they are never sent again.
static void
s_skip_failed(zm_window_t *self)
{
    while (self->cursor < self->count && s_at(self, self->cursor)->failed)
        self->cursor++;
}

bool
zm_window_peek(zm_window_t *self, uint64_t *seq_p, uint32_t *flags_p, zframe_t **body_p)
{
    assert(self);
    s_skip_failed(self);
    if (self->cursor == self->count)
        return false;
    s_entry_t *entry = s_at(self, self->cursor);
    *seq_p = entry->seq;
    *flags_p = entry->mode == ZMESH_PROCESSED ? ZM_PUSH_DONE : 0;
    *body_p = entry->body;
    return true;
}

static void
s_watch_reached(zm_window_t *self, const s_entry_t *entry, zm_window_stage_t stage, int rc)
{
    if (entry->token == self->watch_token && stage > self->watch_stage) {
        self->watch_stage = stage;
        self->watch_rc = rc;
    }
}

void
zm_window_sent(zm_window_t *self)
{
    assert(self);
    assert(self->cursor < self->count);
    s_entry_t *entry = s_at(self, self->cursor);
    if (entry->seq > self->sent_seq)
        self->sent_seq = entry->seq;
    s_watch_reached(self, entry, ZM_WINDOW_SENT, ZMESH_OK);
    self->cursor++;
}

void
zm_window_rewind(zm_window_t *self)
{
    assert(self);
    self->cursor = 0;
}

//  Ends an entry that failed: the watching send or the next flush reports it.
static void
s_fail(zm_window_t *self, s_entry_t *entry, int rc, const char *why)
{
    char text[S_ERROR_MAX];
    //  A long reason is cut to fit after "message <20 digits>: ".
    snprintf(text, sizeof text, "message %" PRIu64 ": %.*s", entry->token, S_ERROR_MAX - 31, why);
    snprintf(self->error, sizeof self->error, "%s", text);
    if (entry->token == self->watch_token)
        s_watch_reached(self, entry, ZM_WINDOW_SETTLED, rc);
    else if (self->first_rc == ZMESH_OK) {
        self->first_rc = rc;
        snprintf(self->first_text, sizeof self->first_text, "%s", text);
    }
}

void
zm_window_renumber(zm_window_t *self)
{
    assert(self);
    for (s_entry_t *entry = zhashx_first(self->awaiting); entry;
         entry = zhashx_next(self->awaiting))
        s_fail(self, entry, ZMESH_ETIMEDOUT, "the connection was lost before DONE came");
    zhashx_purge(self->awaiting);
    size_t kept = 0;
    for (size_t i = 0; i < self->count; i++) {
        s_entry_t *entry = s_at(self, i);
        if (entry->failed)
            s_entry_destroy(&entry);
        else {
            entry->seq = kept + 1;
            self->ring[(self->head + kept) % self->capacity] = entry;
            kept++;
        }
    }
    self->count = kept;
    self->live = kept;
    self->cursor = 0;
    self->next_seq = kept + 1;
    self->sent_seq = 0;
}

//  The oldest entry leaves the ring.
static s_entry_t *
s_pop(zm_window_t *self)
{
    s_entry_t *entry = self->ring[self->head];
    self->ring[self->head] = NULL;
    self->head = (self->head + 1) % self->capacity;
    self->count--;
    if (self->cursor > 0)
        self->cursor--;
    if (!entry->failed)
        self->live--;
    return entry;
}

size_t
zm_window_on_accept(zm_window_t *self, uint64_t seq)
{
    assert(self);
    //  Only what went out on this connection can have been taken on it.
    if (seq > self->sent_seq)
        seq = self->sent_seq;
    size_t settled = 0;
    while (self->count > 0 && s_at(self, 0)->seq <= seq) {
        s_entry_t *entry = s_pop(self);
        if (!entry->failed) {
            settled++;
            zframe_destroy(&entry->body);
            if (entry->mode == ZMESH_PROCESSED) {
                s_watch_reached(self, entry, ZM_WINDOW_ACCEPTED, ZMESH_OK);
                zhashx_update(self->awaiting, ZM_HASH_KEY(entry->seq), entry);
                continue;
            }
            s_watch_reached(self, entry, ZM_WINDOW_SETTLED, ZMESH_OK);
        }
        s_entry_destroy(&entry);
    }
    return settled;
}

bool
zm_window_on_refuse(zm_window_t *self, uint64_t seq, uint32_t status, const char *reason)
{
    assert(self);
    if (self->count == 0 || seq < s_at(self, 0)->seq || seq > self->sent_seq)
        return false;                           //  settled already, or never sent here
    s_entry_t *entry = s_at(self, (size_t) (seq - s_at(self, 0)->seq));
    if (status == ZM_STATUS_BUSY) {
        zm_window_rewind(self);
        return true;
    }
    if (entry->failed)
        return false;
    char why[S_ERROR_MAX];
    snprintf(why, sizeof why, "refused (%u): %s", status, reason && *reason ? reason : "no reason");
    int rc = zm_proto_status_error(status);
    s_fail(self, entry, rc == ZMESH_OK || rc == ZMESH_EAGAIN ? ZMESH_EPROTO : rc, why);
    entry->failed = true;
    zframe_destroy(&entry->body);
    self->live--;
    while (self->count > 0 && s_at(self, 0)->failed) {
        s_entry_t *tombstone = s_pop(self);
        s_entry_destroy(&tombstone);
    }
    return false;
}

void
zm_window_on_done(zm_window_t *self, uint64_t seq, uint32_t status)
{
    assert(self);
    //  DONE implies the message was taken, even if its ACCEPT is late.
    if (self->count > 0 && s_at(self, 0)->seq <= seq)
        zm_window_on_accept(self, seq);
    s_entry_t *entry = zm_hash_lookup(self->awaiting, seq);
    if (!entry)
        return;
    if (status == ZM_STATUS_OK)
        s_watch_reached(self, entry, ZM_WINDOW_SETTLED, ZMESH_OK);
    else {
        char why[S_ERROR_MAX];
        snprintf(why, sizeof why, "DONE %u: every consumer it was given to was lost", status);
        int rc = zm_proto_status_error(status);
        s_fail(self, entry, rc == ZMESH_OK ? ZMESH_EPROTO : rc, why);
    }
    zhashx_delete(self->awaiting, ZM_HASH_KEY(seq));
}

size_t
zm_window_unaccepted(const zm_window_t *self)
{
    assert(self);
    return self->live;
}

size_t
zm_window_pending(const zm_window_t *self)
{
    assert(self);
    return self->live + zhashx_size(self->awaiting);
}

bool
zm_window_in_flight(const zm_window_t *self)
{
    assert(self);
    for (size_t i = 0; i < self->cursor && i < self->count; i++)
        if (!s_at(self, i)->failed)
            return true;
    return false;
}

void
zm_window_watch(zm_window_t *self, uint64_t token)
{
    assert(self);
    self->watch_token = token;
    self->watch_stage = ZM_WINDOW_UNSENT;
    self->watch_rc = ZMESH_OK;
}

zm_window_stage_t
zm_window_watched(const zm_window_t *self, int *rc_p)
{
    assert(self);
    if (rc_p)
        *rc_p = self->watch_rc;
    return self->watch_stage;
}

int
zm_window_take_failure(zm_window_t *self)
{
    assert(self);
    int rc = self->first_rc;
    if (rc != ZMESH_OK)
        snprintf(self->error, sizeof self->error, "%s", self->first_text);
    self->first_rc = ZMESH_OK;
    self->first_text[0] = '\0';
    return rc;
}

const char *
zm_window_error(const zm_window_t *self)
{
    assert(self);
    return self->error;
}
