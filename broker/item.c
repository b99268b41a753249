//  item - a pipeline message inside the broker, and the queue it waits in.
//
//  Every CZMQ frame is a 352-byte allocation (zframe_t carries a 256-byte
//  group name) before its data, so a queue of zm_item_t with a frame each,
//  in list nodes, cost about 500 bytes per 16-byte message. Here a fresh
//  message is a record of 16 bytes plus its body, packed in chunks that are
//  freed as the queue drains; an item keeps a small body in its own
//  allocation, and only a large one in a frame.
#include "item.h"

#include "zm_alloc.h"

#include <stddef.h>
#include <string.h>

//  A message leaving the queue: takes *frame_p as its body if frame_p is
//  not NULL, else copies size bytes at data in; takes *producer_p if not NULL.
static zm_item_t *
s_item_new(uint64_t id, zframe_t **frame_p, const void *data, size_t size,
           zframe_t **producer_p, uint64_t seq)
{
    zm_item_t *self = zm_alloc(sizeof *self + (frame_p ? 0 : size));
    self->id = id;
    if (frame_p) {
        self->frame = *frame_p;
        *frame_p = NULL;
        self->size = zframe_size(self->frame);
    }
    else {
        memcpy(self->data, data, size);
        self->size = size;
    }
    if (producer_p) {
        self->producer = *producer_p;
        *producer_p = NULL;
    }
    self->seq = seq;
    return self;
}

void
zm_item_destroy(zm_item_t **self_p)
{
    assert(self_p);
    zm_item_t *self = *self_p;
    if (!self)
        return;
    zframe_destroy(&self->frame);
    zframe_destroy(&self->producer);
    free(self);
    *self_p = NULL;
}

const byte *
zm_item_data(const zm_item_t *self)
{
    assert(self);
    return self->frame ? zframe_data(self->frame) : self->data;
}

zframe_t *
zm_item_body(const zm_item_t *self)
{
    assert(self);
    return zframe_new(zm_item_data(self), self->size);
}

//  ---------------------------------------------------------------------
//  The queue

//  Bodies up to this size are copied into the record; larger ones keep the
//  frame they came in (its overhead is then small next to the body, and a
//  large copy is saved).
#define S_INLINE_MAX 1024

//  Chunk data sizes: the first chunk of a queue is small (most pipelines
//  hold a few messages), each further one twice its predecessor up to
//  S_CHUNK_MAX, which keeps every chunk under glibc's mmap threshold and the
//  waste at the end of a chunk small.
#define S_CHUNK_MIN 2048
#define S_CHUNK_MAX (65536 - sizeof(s_chunk_t))

#define S_DONE 1                //  the record has a seq and a producer routing id
#define S_EXTERNAL 2            //  the record holds the body's frame, not the body

//  A record in a chunk: this header, then seq (S_DONE), then the frame
//  pointer (S_EXTERNAL), then the routing id bytes (S_DONE), then the body
//  (not S_EXTERNAL), padded to 8 bytes.
typedef struct {
    uint64_t id;
    uint32_t size;              //  body bytes when inline; 0 when S_EXTERNAL
    uint16_t producer_size;     //  routing id bytes, with S_DONE
    uint8_t flags;
    uint8_t spare;
} s_record_t;

typedef struct s_chunk {
    struct s_chunk *next;       //  owned: the chunk after, NULL for the last
    size_t capacity;            //  bytes of data
    size_t head;                //  offset of the first record still waiting
    size_t tail;                //  offset past the last record
    uint8_t data[];             //  records, from head to tail
} s_chunk_t;

//  Records are 8-byte aligned in data, and data in the chunk.
static_assert(offsetof(s_chunk_t, data) % 8 == 0, "chunk data must be 8-byte aligned");

struct zm_itemq {
    s_chunk_t *first;           //  owned, the chain of chunks; NULL when none
    s_chunk_t *last;            //  borrowed: where records are appended
    size_t records;             //  fresh messages in the chunks
    zlistx_t *back;             //  owned zm_item_t put back, lowest id first
    size_t bytes;               //  body bytes of all messages waiting
    size_t footprint;           //  bytes of chunks allocated
    size_t freed;               //  bytes of chunks freed since the last take
    size_t next_capacity;       //  data bytes of the next chunk
    uint64_t last_id;           //  the last id appended
};

static void
s_item_destroy(void **item_p)
{
    zm_item_destroy((zm_item_t **) item_p);
}

static int
s_item_compare(const void *a, const void *b)
{
    uint64_t id_a = ((const zm_item_t *) a)->id, id_b = ((const zm_item_t *) b)->id;
    return id_a < id_b ? -1 : id_a > id_b;
}

zm_itemq_t *
zm_itemq_new(void)
{
    zm_itemq_t *self = zm_alloc(sizeof *self);
    self->back = zlistx_new();
    zlistx_set_destructor(self->back, s_item_destroy);
    zlistx_set_comparator(self->back, s_item_compare);
    self->next_capacity = S_CHUNK_MIN;
    return self;
}

static size_t
s_align(size_t size)
{
    return (size + 7) & ~(size_t) 7;
}

//  Bytes a record takes in its chunk, header included.
static size_t
s_record_span(const s_record_t *record)
{
    size_t span = sizeof *record;
    if (record->flags & S_DONE)
        span += sizeof(uint64_t) + record->producer_size;
    if (record->flags & S_EXTERNAL)
        span += sizeof(zframe_t *);
    else
        span += record->size;
    return s_align(span);
}

//  Reads the record at offset in chunk: *seq_p gets its seq (0 without
//  S_DONE), *frame_p its body frame (NULL unless S_EXTERNAL), *producer_p
//  where its routing id is (NULL without S_DONE), *body_p where an inline
//  body is.
static s_record_t
s_record_read(const s_chunk_t *chunk, size_t offset, uint64_t *seq_p, zframe_t **frame_p,
              const uint8_t **producer_p, const uint8_t **body_p)
{
    s_record_t record;
    const uint8_t *at = chunk->data + offset;
    memcpy(&record, at, sizeof record);
    at += sizeof record;
    *seq_p = 0;
    *frame_p = NULL;
    *producer_p = NULL;
    if (record.flags & S_DONE) {
        memcpy(seq_p, at, sizeof *seq_p);
        at += sizeof *seq_p;
    }
    if (record.flags & S_EXTERNAL) {
        memcpy(frame_p, at, sizeof *frame_p);
        at += sizeof *frame_p;
    }
    if (record.flags & S_DONE) {
        *producer_p = at;
        at += record.producer_size;
    }
    *body_p = at;
    return record;
}

static void
s_chunk_free(zm_itemq_t *self, s_chunk_t *chunk)
{
    size_t size = sizeof *chunk + chunk->capacity;
    self->footprint -= size;
    self->freed += size;
    free(chunk);
}

//  Destroys the frames of the records left in chunk (the bodies not inline).
static void
s_chunk_purge(s_chunk_t *chunk)
{
    for (size_t offset = chunk->head; offset < chunk->tail;) {
        uint64_t seq;
        zframe_t *frame;
        const uint8_t *producer, *body;
        s_record_t record = s_record_read(chunk, offset, &seq, &frame, &producer, &body);
        zframe_destroy(&frame);
        offset += s_record_span(&record);
    }
}

void
zm_itemq_destroy(zm_itemq_t **self_p)
{
    assert(self_p);
    zm_itemq_t *self = *self_p;
    if (!self)
        return;
    zlistx_destroy(&self->back);
    while (self->first) {
        s_chunk_t *chunk = self->first;
        self->first = chunk->next;
        s_chunk_purge(chunk);
        free(chunk);
    }
    free(self);
    *self_p = NULL;
}

//  A new last chunk with room for at least span bytes.
static s_chunk_t *
s_chunk_add(zm_itemq_t *self, size_t span)
{
    size_t capacity = span > self->next_capacity ? span : self->next_capacity;
    s_chunk_t *chunk = zm_alloc(sizeof *chunk + capacity);
    chunk->capacity = capacity;
    self->footprint += sizeof *chunk + capacity;
    if (self->last)
        self->last->next = chunk;
    else
        self->first = chunk;
    self->last = chunk;
    if (self->next_capacity < S_CHUNK_MAX)
        self->next_capacity
            = 2 * self->next_capacity < S_CHUNK_MAX ? 2 * self->next_capacity : S_CHUNK_MAX;
    return chunk;
}

void
zm_itemq_append(zm_itemq_t *self, uint64_t id, zframe_t **body_p, zframe_t *producer,
                uint64_t seq)
{
    assert(self);
    assert(id > self->last_id);
    assert(body_p && *body_p);
    //  ROUTER routing ids are at most 255 bytes.
    assert(!producer || zframe_size(producer) <= UINT16_MAX);
    size_t size = zframe_size(*body_p);
    s_record_t record = {.id = id};
    if (size > S_INLINE_MAX)
        record.flags |= S_EXTERNAL;
    else
        record.size = (uint32_t) size;
    if (producer) {
        record.flags |= S_DONE;
        record.producer_size = (uint16_t) zframe_size(producer);
    }
    size_t span = s_record_span(&record);
    s_chunk_t *chunk = self->last;
    if (!chunk || chunk->capacity - chunk->tail < span)
        chunk = s_chunk_add(self, span);
    uint8_t *at = chunk->data + chunk->tail;
    memcpy(at, &record, sizeof record);
    at += sizeof record;
    if (producer) {
        memcpy(at, &seq, sizeof seq);
        at += sizeof seq;
    }
    if (record.flags & S_EXTERNAL) {
        memcpy(at, body_p, sizeof *body_p);     //  the frame itself: it is kept
        at += sizeof *body_p;
        *body_p = NULL;
    }
    if (producer) {
        memcpy(at, zframe_data(producer), record.producer_size);
        at += record.producer_size;
    }
    if (!(record.flags & S_EXTERNAL)) {
        memcpy(at, zframe_data(*body_p), size);
        zframe_destroy(body_p);
    }
    chunk->tail += span;
    self->records++;
    self->bytes += size;
    self->last_id = id;
}

void
zm_itemq_put_back(zm_itemq_t *self, zm_item_t *item)
{
    assert(self);
    assert(item && !item->consumer);
    //  Items come back newest first (a consumer's, from its last), so the
    //  search from the head covers only those back before it.
    zlistx_insert(self->back, item, true);
    self->bytes += item->size;
}

//  The head record is gone: frees its chunk once it holds no more, and when
//  the queue empties, keeps only a first-sized chunk for the next message.
static void
s_drop_head(zm_itemq_t *self, size_t span)
{
    s_chunk_t *chunk = self->first;
    chunk->head += span;
    self->records--;
    if (chunk->head < chunk->tail)
        return;
    if (chunk->next) {
        self->first = chunk->next;
        s_chunk_free(self, chunk);
    }
    else if (chunk->capacity > S_CHUNK_MIN) {
        self->first = self->last = NULL;
        s_chunk_free(self, chunk);
        self->next_capacity = S_CHUNK_MIN;
    }
    else
        chunk->head = chunk->tail = 0;
}

zm_item_t *
zm_itemq_pop(zm_itemq_t *self)
{
    assert(self);
    zm_item_t *back = zlistx_first(self->back);
    uint64_t id = 0;
    if (self->records) {
        //  The record's id is its first field.
        memcpy(&id, self->first->data + self->first->head, sizeof id);
    }
    if (back && (!self->records || back->id < id)) {
        zlistx_detach(self->back, NULL);
        self->bytes -= back->size;
        return back;
    }
    if (!self->records)
        return NULL;
    uint64_t seq;
    zframe_t *body;
    const uint8_t *producer_data, *body_data;
    s_record_t record
        = s_record_read(self->first, self->first->head, &seq, &body, &producer_data, &body_data);
    zframe_t *producer
        = record.flags & S_DONE ? zframe_new(producer_data, record.producer_size) : NULL;
    zm_item_t *item = s_item_new(record.id, body ? &body : NULL, body_data, record.size,
                                 producer ? &producer : NULL, seq);
    self->bytes -= item->size;
    s_drop_head(self, s_record_span(&record));
    return item;
}

size_t
zm_itemq_size(const zm_itemq_t *self)
{
    assert(self);
    return self->records + zlistx_size(self->back);
}

size_t
zm_itemq_bytes(const zm_itemq_t *self)
{
    assert(self);
    return self->bytes;
}

size_t
zm_itemq_footprint(const zm_itemq_t *self)
{
    assert(self);
    return self->footprint;
}

size_t
zm_itemq_freed(const zm_itemq_t *self)
{
    assert(self);
    return self->freed;
}

size_t
zm_itemq_take_freed(zm_itemq_t *self)
{
    assert(self);
    size_t freed = self->freed;
    self->freed = 0;
    return freed;
}

bool
zm_itemq_check(const zm_itemq_t *self)
{
    assert(self);
    size_t records = 0, bytes = 0, footprint = 0;
    uint64_t last = 0;
    for (const s_chunk_t *chunk = self->first; chunk; chunk = chunk->next) {
        footprint += sizeof *chunk + chunk->capacity;
        if (chunk->head > chunk->tail || chunk->tail > chunk->capacity
            || (chunk->next == NULL) != (chunk == self->last))
            return false;
        for (size_t offset = chunk->head; offset < chunk->tail;) {
            uint64_t seq;
            zframe_t *frame;
            const uint8_t *producer, *body;
            s_record_t record = s_record_read(chunk, offset, &seq, &frame, &producer, &body);
            if (record.id <= last || record.id > self->last_id)
                return false;
            last = record.id;
            records++;
            bytes += frame ? zframe_size(frame) : record.size;
            offset += s_record_span(&record);
        }
    }
    last = 0;
    zlistx_t *back = self->back;    //  the walk moves its cursor only
    for (const zm_item_t *item = zlistx_first(back); item; item = zlistx_next(back)) {
        if (item->consumer || item->id <= last)
            return false;
        last = item->id;
        bytes += item->size;
    }
    return records == self->records && bytes == self->bytes && footprint == self->footprint;
}
