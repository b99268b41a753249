//  engine_pipe - the broker's pipeline logic (ZMP.md section 16).
//
//  A producer's PUSHes are taken strictly in seq order per link (go-back-N):
//  a full pipeline answers REFUSE 503 and the producer resends from that seq
//  after RESUME, so the broker never holds more than a pipeline's bound and
//  never drops a message it was given. Taken messages wait in their
//  pipeline's queue and go to the consumer with free credit used least
//  recently; an ACK ends them (DONE to a producer that asked), a lost
//  consumer puts the ones it held back at the head of the queue.
#include "engine_internal.h"

#include "zm_alloc.h"
#include "zm_hash.h"
#include "zm_log.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

static void
s_pipeline_destroy(void **item_p)
{
    zm_pipeline_destroy((zm_pipeline_t **) item_p);
}

static void
s_consumer_destroy(void **item_p)
{
    zm_consumer_destroy((zm_consumer_t **) item_p);
}

static void
s_link_destroy(void **item_p)
{
    zm_link_destroy((zm_link_t **) item_p);
}

void
zm_engine_pipe_init(zm_engine_t *self)
{
    self->pipelines = zhashx_new();
    zhashx_set_destructor(self->pipelines, s_pipeline_destroy);
    self->consumers = zhashx_new();
    zhashx_set_destructor(self->consumers, s_consumer_destroy);
    self->links = zhashx_new();
    zhashx_set_destructor(self->links, s_link_destroy);
    self->items = zm_hash_new_u64();
    self->reports = zlistx_new();
}

void
zm_engine_pipe_destroy(zm_engine_t *self)
{
    //  Consumers, links and items point into pipelines: they go first.
    zlistx_destroy(&self->reports);
    for (zm_item_t *item = zhashx_first(self->items); item; item = zhashx_next(self->items))
        zm_item_destroy(&item);                  //  the table only borrows them
    zhashx_destroy(&self->items);
    zhashx_destroy(&self->links);
    zhashx_destroy(&self->consumers);
    zhashx_destroy(&self->pipelines);
    zframe_destroy(&self->parked);
}

static bool
s_reserved(const char *name)
{
    return strncmp(name, "zmesh.", 6) == 0;
}

static zm_pipeline_t *
s_pipeline_require(zm_engine_t *self, const char *name, int64_t now)
{
    zm_pipeline_t *pipeline = zhashx_lookup(self->pipelines, name);
    if (!pipeline && zhashx_size(self->pipelines) < self->config.max_pipelines) {
        pipeline = zm_pipeline_new(name, self->config.max_queue, self->config.max_queue_bytes,
                                   now);
        zhashx_insert(self->pipelines, name, pipeline);
    }
    return pipeline;
}

//  Sends a pipeline command with a name and, for some, a seq and a status.
static void
s_tell(zm_engine_t *self, zframe_t *routing, zm_cmd_t cmd, const char *pipeline, uint64_t seq,
       uint32_t status, const char *reason)
{
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = cmd;
    snprintf(command.service, sizeof command.service, "%s", pipeline);
    command.id = seq;
    command.status = status;
    if (reason)
        command.body = zm_proto_reason_frame(reason);
    zm_engine_send(self, routing, &command);
}

static void
s_refuse(zm_engine_t *self, zframe_t *routing, const char *pipeline, uint64_t seq,
         uint32_t status, const char *reason)
{
    s_tell(self, routing, ZM_CMD_REFUSE, pipeline, seq, status, reason);
    if (status == ZM_STATUS_BUSY)
        self->counters.refused_full++;
    else
        self->counters.pushes_refused++;
}

//  The link's messages up to seq are settled: owe it an ACCEPT.
static void
s_report(zm_engine_t *self, zm_link_t *link, uint64_t seq)
{
    link->report = seq;
    if (!link->report_handle)
        link->report_handle = zlistx_add_end(self->reports, link);
}

void
zm_engine_pipe_report(zm_engine_t *self)
{
    zm_link_t *link;
    while ((link = zlistx_detach(self->reports, NULL))) {
        link->report_handle = NULL;
        s_tell(self, link->routing, ZM_CMD_ACCEPT, link->pipeline->name, link->report, 0, NULL);
    }
}

//  REFUSE 503 for the seq the link expects: it resends from there on RESUME.
static void
s_refuse_full(zm_engine_t *self, zm_link_t *link, const char *reason, size_t size)
{
    s_refuse(self, link->routing, link->pipeline->name, link->expected, ZM_STATUS_BUSY, reason);
    link->refused = true;
    link->refused_size = size;
    link->pipeline->refused_full++;
    zm_pipeline_wait(link->pipeline, link);
}

//  RESUMEs one waiting producer with a grant of share messages (at least
//  one), or no limit when the pipeline is empty.
static void
s_resume(zm_engine_t *self, zm_link_t *link, size_t share)
{
    zm_pipeline_t *pipeline = link->pipeline;
    zm_pipeline_unwait(pipeline, link);
    //  A link that has not started yet has no seq to count from.
    link->granted = pipeline->held == 0 || link->expected == 0
                        ? 0 : link->expected + (share ? share : 1) - 1;
    zm_proto_t resume;
    zm_proto_init(&resume);
    resume.cmd = ZM_CMD_RESUME;
    snprintf(resume.service, sizeof resume.service, "%s", pipeline->name);
    resume.id = link->granted;
    zm_engine_send(self, link->routing, &resume);
}

//  RESUMEs every producer waiting on pipeline, once it is resumable: each
//  is granted an equal share of the free room, as the last seq it may send,
//  or no limit when the pipeline is empty (ZMP.md 16.4).
static void
s_resume_waiting(zm_engine_t *self, zm_pipeline_t *pipeline)
{
    size_t waiting = zlistx_size(pipeline->waiting);
    if (waiting == 0 || !zm_pipeline_resumable(pipeline))
        return;
    size_t share = (pipeline->max_held - pipeline->held) / waiting;
    zm_link_t *link = zlistx_first(pipeline->waiting);
    while (link) {
        zm_link_t *next = zlistx_next(pipeline->waiting);
        //  One refused for a body that still does not fit waits on: resuming
        //  it would only bring the same body back to be refused again.
        if (zm_pipeline_fits(pipeline, link->refused_size) == ZM_STATUS_OK)
            s_resume(self, link, share);
        link = next;
    }
}

static void
s_forget_link(zm_engine_t *self, zm_link_t *link)
{
    if (link->report_handle)
        zlistx_delete(self->reports, link->report_handle);
    zm_pipeline_unwait(link->pipeline, link);
    link->pipeline->links--;
    zhashx_delete(self->links, link->key);
}

void
zm_engine_pipe_forget_links(zm_engine_t *self, const char *id)
{
    size_t length = strlen(id);
    zlistx_t *gone = zlistx_new();              //  borrowed: forget after the walk
    for (zm_link_t *link = zhashx_first(self->links); link; link = zhashx_next(self->links))
        if (strncmp(link->key, id, length) == 0 && link->key[length] == '/')
            zlistx_add_end(gone, link);
    for (zm_link_t *link = zlistx_first(gone); link; link = zlistx_next(gone))
        s_forget_link(self, link);
    zlistx_destroy(&gone);
}

//  The link of this connection on this pipeline; NULL when a table is full.
static zm_link_t *
s_link_require(zm_engine_t *self, zframe_t *routing, const char *id, const char *name,
               int64_t now)
{
    char key[ZM_ENGINE_ID_MAX + ZM_NAME_MAX + 2];
    snprintf(key, sizeof key, "%s/%s", id, name);
    zm_link_t *link = zhashx_lookup(self->links, key);
    if (link)
        return link;
    if (zhashx_size(self->links) >= self->config.max_links)
        return NULL;
    zm_pipeline_t *pipeline = s_pipeline_require(self, name, now);
    if (!pipeline)
        return NULL;
    zframe_t *copy = zframe_dup(routing);
    link = zm_link_new(key, &copy, pipeline, now);
    zhashx_insert(self->links, key, link);
    pipeline->links++;
    return link;
}

//  True if seq is the one the link takes now. Otherwise answers as ZMP.md
//  16.4 says: a resend of a settled message is ACCEPTed again, a message
//  after a refused one is skipped (the producer resends it).
static bool
s_in_order(zm_engine_t *self, zm_link_t *link, uint64_t seq)
{
    if (link->expected == 0)
        link->expected = seq;           //  a new connection starts where it starts
    if (seq == link->expected)
        return true;
    if (seq < link->expected) {
        self->counters.duplicate_pushes++;
        s_report(self, link, link->expected - 1);
        return false;
    }
    self->counters.skipped_pushes++;
    if (!link->refused) {
        //  A gap nobody announced: have the producer go back to it.
        s_refuse_full(self, link, "messages are missing before this one: resend from here", 0);
        if (zm_pipeline_fits(link->pipeline, 0) == ZM_STATUS_OK)
            s_resume(self, link, 1);                //  room now: resend at once
    }
    return false;
}

static void
s_deliver(zm_engine_t *self, zm_pipeline_t *pipeline, int64_t now)
{
    zm_consumer_t *consumer;
    while (zm_pipeline_queued(pipeline) > 0
           && (consumer = zm_pipeline_next_consumer(pipeline))) {
        zm_item_t *item = zm_pipeline_pop(pipeline);
        item->attempts++;
        item->consumer = consumer;
        item->consumer_handle = zlistx_add_end(consumer->inflight, item);
        zhashx_insert(self->items, ZM_HASH_KEY(item->id), item);
        zm_pipeline_requeue_consumer(pipeline, consumer, true);
        pipeline->inflight++;
        pipeline->delivered++;
        self->counters.deliveries++;

        zm_proto_t deliver;
        zm_proto_init(&deliver);
        deliver.cmd = ZM_CMD_DELIVER;
        snprintf(deliver.service, sizeof deliver.service, "%s", pipeline->name);
        deliver.id = item->id;
        deliver.attempt = item->attempts;
        deliver.body = zm_item_body(item);          //  a copy: kept until acknowledged
        zm_engine_send(self, consumer->routing, &deliver);
        consumer->peer.last_sent = now;
    }
}

//  Room was freed in pipeline: take the parked push-endpoint message if it
//  fits, and tell the producers it refused once a quarter is free.
static void
s_room_freed(zm_engine_t *self, zm_pipeline_t *pipeline, int64_t now)
{
    if (self->parked && self->parked_in == pipeline
        && zm_pipeline_fits(pipeline, zframe_size(self->parked)) == ZM_STATUS_OK) {
        zm_pipeline_push(pipeline, ++self->next_message_id, &self->parked, NULL, 0);
        self->counters.pushes_accepted++;
        self->parked_in = NULL;
    }
    s_resume_waiting(self, pipeline);
    s_deliver(self, pipeline, now);
}

//  A message leaves for good: acknowledged (200) or given up (502).
static void
s_finish(zm_engine_t *self, zm_pipeline_t *pipeline, zm_item_t **item_p, uint32_t status)
{
    zm_item_t *item = *item_p;
    zm_pipeline_release(pipeline, item);
    if (item->producer) {
        zm_proto_t done;
        zm_proto_init(&done);
        done.cmd = ZM_CMD_DONE;
        snprintf(done.service, sizeof done.service, "%s", pipeline->name);
        done.id = item->seq;
        done.status = status;
        zm_engine_emit(self, &item->producer, &done);
    }
    zm_item_destroy(item_p);
}

void
zm_engine_pipe_on_push(zm_engine_t *self, zframe_t *routing, const char *id,
                       zm_proto_t *command, int64_t now)
{
    self->counters.pushes++;
    const char *name = command->service;
    uint64_t seq = command->id;
    if (seq == 0 || s_reserved(name)) {
        s_refuse(self, routing, name, seq, ZM_STATUS_MALFORMED,
                 seq ? "pipeline names zmesh.* are reserved"
                     : "seq must be 1 or more on the broker socket");
        zm_engine_count_garbage(self, id, now);
        return;
    }
    zm_link_t *link = s_link_require(self, routing, id, name, now);
    if (!link) {
        s_refuse(self, routing, name, seq, ZM_STATUS_BUSY, "too many pipelines or producers");
        return;
    }
    link->last_heard = now;
    if (!s_in_order(self, link, seq))
        return;
    zm_pipeline_t *pipeline = link->pipeline;
    uint32_t fits = zm_pipeline_fits(pipeline, zframe_size(command->body));
    if (fits == ZM_STATUS_OK && self->parked_in == pipeline
        && zm_pipeline_fits(pipeline, zframe_size(command->body) + zframe_size(self->parked))
               != ZM_STATUS_OK)
        fits = ZM_STATUS_BUSY;      //  the parked push-endpoint message goes first
    if (fits == ZM_STATUS_TOO_BIG) {
        s_refuse(self, routing, name, seq, ZM_STATUS_TOO_BIG,
                 "the message is larger than the pipeline's byte bound");
        link->expected++;
        return;
    }
    if (fits != ZM_STATUS_OK) {
        s_refuse_full(self, link, "the pipeline is full: resend from this seq after RESUME",
                      zframe_size(command->body));
        return;
    }
    bool probe = link->waiting_handle != NULL;  //  sent while waiting for RESUME
    link->refused = false;
    link->refused_size = 0;
    zm_pipeline_unwait(pipeline, link);
    zm_pipeline_push(pipeline, ++self->next_message_id, &command->body,
                     (command->flags & ZM_PUSH_DONE) ? routing : NULL, seq);
    self->counters.pushes_accepted++;
    link->expected++;
    s_report(self, link, seq);
    if (probe || (link->granted && seq >= link->granted)) {
        //  Its grant is used up, or it probed (its RESUME may have been lost):
        //  the next grant goes out as soon as there is room.
        zm_pipeline_wait(pipeline, link);
        s_resume_waiting(self, pipeline);
    }
    s_deliver(self, pipeline, now);
}

void
zm_engine_pipe_on_bad_push(zm_engine_t *self, zframe_t *routing, const char *id,
                           const zm_proto_t *command, uint32_t status, const char *reason,
                           int64_t now)
{
    self->counters.pushes++;
    zm_link_t *link = command->id && !s_reserved(command->service)
                          ? s_link_require(self, routing, id, command->service, now)
                          : NULL;
    if (link) {
        link->last_heard = now;
        if (!s_in_order(self, link, command->id))
            return;
        link->expected++;               //  settled: refused for good
        link->refused = false;
        zm_pipeline_unwait(link->pipeline, link);
    }
    s_refuse(self, routing, command->service, command->id, status, reason);
}

void
zm_engine_pipe_on_consume(zm_engine_t *self, zframe_t **routing_p, const char *id,
                          zm_proto_t *command, int64_t now)
{
    if (zm_engine_refuse_reserved(self, *routing_p, id, command->service, "pipeline", now))
        return;
    zm_pipeline_t *pipeline = s_pipeline_require(self, command->service, now);
    if (!pipeline) {
        zm_engine_disconnect(self, *routing_p, ZM_STATUS_BUSY, "too many pipelines");
        self->counters.rejected_busy++;
        return;
    }
    zm_consumer_t *consumer = zm_consumer_new(routing_p, id, pipeline, command, now);
    if (self->sender)
        consumer->key = zm_strdup(self->sender->key);
    zhashx_insert(self->consumers, id, consumer);
    zm_liveness_sched_add(self->consumer_beats, &consumer->peer, consumer);
    zm_pipeline_attach(pipeline, consumer);
    zm_log_info("broker: consumer ready id=%s pipeline=%s credit=%u heartbeat_ms=%u", id,
                pipeline->name, consumer->credit, consumer->peer.heartbeat_ms);
    s_deliver(self, pipeline, now);
}

//  The message the consumer holds under id, taken out of its hands (and out
//  of the table of messages in flight); NULL, counted, if it holds none.
static zm_item_t *
s_take_back(zm_engine_t *self, zm_consumer_t *consumer, uint64_t id)
{
    zm_item_t *item = zm_hash_lookup(self->items, id);
    if (!item || item->consumer != consumer) {
        self->counters.stray_acks++;
        return NULL;
    }
    zlistx_detach(consumer->inflight, item->consumer_handle);
    zhashx_delete(self->items, ZM_HASH_KEY(item->id));
    item->consumer = NULL;
    item->consumer_handle = NULL;
    consumer->pipeline->inflight--;
    return item;
}

//  Ends a consumer session: what it held goes back to the head of the
//  queue, in delivery order, unless it was delivered max_deliveries times.
static void
s_retire(zm_engine_t *self, zm_consumer_t *consumer, const char *why, int64_t now)
{
    zm_pipeline_t *pipeline = consumer->pipeline;
    consumer->gone = true;
    zm_pipeline_requeue_consumer(pipeline, consumer, false);
    size_t requeued = 0, poisoned = 0;
    zm_item_t *item;
    while ((item = zlistx_last(consumer->inflight))) {
        s_take_back(self, consumer, item->id);
        if (item->attempts >= self->config.max_deliveries) {
            pipeline->dropped_poison++;
            self->counters.dropped_poison++;
            poisoned++;
            zm_log_warning("broker: message given up pipeline=%s id=%" PRIu64 " attempts=%u",
                           pipeline->name, item->id, item->attempts);
            s_finish(self, pipeline, &item, ZM_STATUS_WORKER_LOST);
            continue;
        }
        zm_pipeline_requeue(pipeline, item);
        requeued++;
    }
    self->counters.redeliveries += requeued;
    zm_pipeline_detach(pipeline, consumer, now);
    zm_log_info("broker: consumer gone id=%s pipeline=%s why=%s requeued=%zu given_up=%zu",
                consumer->id, pipeline->name, why, requeued, poisoned);
    zhashx_delete(self->consumers, consumer->id);               //  frees consumer
    s_room_freed(self, pipeline, now);
}

void
zm_engine_pipe_retire(zm_engine_t *self, zm_consumer_t *consumer, const char *why, int64_t now)
{
    s_retire(self, consumer, why, now);
}

void
zm_engine_pipe_kick(zm_engine_t *self, zm_consumer_t *consumer, uint32_t status,
                    const char *reason, int64_t now)
{
    zm_engine_disconnect(self, consumer->routing, status, reason);
    self->counters.consumers_kicked++;
    s_retire(self, consumer, "violation", now);
}

static void
s_on_ack(zm_engine_t *self, zm_consumer_t *consumer, const zm_proto_t *command, int64_t now)
{
    zm_pipeline_t *pipeline = consumer->pipeline;
    for (uint32_t i = 0; i < command->ack_count; i++) {
        zm_item_t *item = s_take_back(self, consumer, command->acks[i]);
        if (!item)
            continue;
        pipeline->acked++;
        consumer->acked++;
        self->counters.acks++;
        s_finish(self, pipeline, &item, ZM_STATUS_OK);
    }
    zm_pipeline_requeue_consumer(pipeline, consumer, false);
    s_room_freed(self, pipeline, now);
}

//  The consumer is leaving: it gets nothing more, and the messages it never
//  handed to its application come back as they were, first in line again,
//  the delivery not counted (ZMP.md 16.5).
static void
s_on_release(zm_engine_t *self, zm_consumer_t *consumer, const zm_proto_t *command,
             int64_t now)
{
    zm_pipeline_t *pipeline = consumer->pipeline;
    consumer->gone = true;
    for (uint32_t i = command->ack_count; i-- > 0;) {   //  the last first: order kept
        zm_item_t *item = s_take_back(self, consumer, command->acks[i]);
        if (!item)
            continue;
        zm_pipeline_unpop(pipeline, item);
        self->counters.released++;
    }
    zm_pipeline_requeue_consumer(pipeline, consumer, false);      //  off the ready list
    s_deliver(self, pipeline, now);
}

void
zm_engine_pipe_on_consumer(zm_engine_t *self, zm_consumer_t *consumer, zm_proto_t *command,
                           int64_t now)
{
    consumer->peer.last_heard = now;             //  any traffic counts as a heartbeat
    switch (command->cmd) {
    case ZM_CMD_ACK:
        s_on_ack(self, consumer, command, now);
        return;
    case ZM_CMD_RELEASE:
        s_on_release(self, consumer, command, now);
        return;
    case ZM_CMD_HEARTBEAT:
        return;
    case ZM_CMD_DISCONNECT:
        s_retire(self, consumer, "disconnect", now);
        return;
    default:
        break;
    }
    zm_log_warning("broker: consumer protocol violation id=%s cmd=%s", consumer->id,
                   zm_proto_cmd_name(command->cmd));
    zm_engine_pipe_kick(self, consumer, ZM_STATUS_MALFORMED, "command not allowed for a consumer",
                        now);
}

bool
zm_engine_pipe_send_failed(zm_engine_t *self, const char *id, bool full, int64_t now)
{
    zm_consumer_t *consumer = zhashx_lookup(self->consumers, id);
    if (!consumer)
        return false;
    self->counters.consumers_unreachable++;
    s_retire(self, consumer, full ? "queue full" : "unreachable", now);
    return true;
}

void
zm_engine_on_push(zm_engine_t *self, zmsg_t **msg_p, const char *user_id, int64_t now)
{
    assert(self);
    assert(msg_p && *msg_p);
    assert(!self->parked);                  //  the transport does not read while blocked
    zmsg_t *msg = *msg_p;
    zmsg_pushmem(msg, NULL, 0);             //  the delimiter a PUSH socket does not send
    zm_proto_t command;
    zm_proto_init(&command);
    zm_proto_error_t error;
    self->counters.pushes++;
    bool ok = zm_proto_decode(&command, msg, &self->config.limits, &error);
    const char *reason = ok ? NULL : error.reason;
    if (ok && command.cmd != ZM_CMD_PUSH)
        reason = "only PUSH is read on the push endpoint";
    else if (ok && s_reserved(command.service))
        reason = "pipeline names zmesh.* are reserved";
    if (!reason && self->keyring && !zm_engine_auth_push(self, user_id, command.service)) {
        zm_proto_reset(&command);           //  denied: logged and counted there
        zmsg_destroy(msg_p);
        return;
    }
    zm_pipeline_t *pipeline = NULL;
    if (!reason && !(pipeline = s_pipeline_require(self, command.service, now)))
        reason = "too many pipelines";
    if (pipeline && zm_pipeline_fits(pipeline, zframe_size(command.body)) == ZM_STATUS_TOO_BIG)
        reason = "the message is larger than the pipeline's byte bound";
    if (reason) {
        char sample[65] = "";
        zframe_t *header = zmsg_first(msg);
        if (header && zframe_size(header) == 0)
            header = zmsg_next(msg);
        if (header)
            zm_log_hex(sample, zframe_data(header), zframe_size(header));
        zm_log_warning("broker: push dropped reason=\"%s\" sample=%s", reason, sample);
        self->counters.dropped_push_malformed++;
        if (pipeline)
            pipeline->dropped_push_malformed++;
    }
    else if (zm_pipeline_fits(pipeline, zframe_size(command.body)) != ZM_STATUS_OK) {
        self->parked = command.body;        //  waits; the push endpoint is not read meanwhile
        command.body = NULL;
        self->parked_in = pipeline;
        pipeline->refused_full++;
    }
    else {
        zm_pipeline_push(pipeline, ++self->next_message_id, &command.body, NULL, 0);
        self->counters.pushes_accepted++;
        s_deliver(self, pipeline, now);
    }
    zm_proto_reset(&command);
    zmsg_destroy(msg_p);
}

bool
zm_engine_push_blocked(const zm_engine_t *self)
{
    assert(self);
    return self->parked != NULL;
}

//  Sends the HEARTBEATs due and retires the consumers silent for too long,
//  visiting only those whose check has come (liveness.h), as for workers.
static void
s_tick_consumers(zm_engine_t *self, int64_t now)
{
    zlistx_t *dead = NULL;                      //  borrowed: retire after the sweep
    zm_liveness_t *peer;
    while ((peer = zm_liveness_sched_pop(self->consumer_beats, now))) {
        zm_consumer_t *consumer = peer->owner;
        if (zm_liveness_expired(peer, now)) {
            consumer->gone = true;              //  none of them gets a requeued message
            zm_pipeline_requeue_consumer(consumer->pipeline, consumer, false);
            if (!dead)
                dead = zlistx_new();
            zlistx_add_end(dead, consumer);     //  stays out of the schedule
            continue;
        }
        if (zm_liveness_due(peer, now)) {
            zm_engine_heartbeat(self, consumer->routing);
            peer->last_sent = now;
        }
        zm_liveness_sched_add(self->consumer_beats, peer, consumer);
    }
    if (!dead)
        return;
    for (zm_consumer_t *consumer = zlistx_first(dead); consumer; consumer = zlistx_next(dead)) {
        self->counters.consumers_expired++;
        s_retire(self, consumer, "expired", now);
    }
    zlistx_destroy(&dead);
}

static void
s_tick_links(zm_engine_t *self, int64_t now)
{
    zlistx_t *stale = zlistx_new();             //  borrowed
    for (zm_link_t *link = zhashx_first(self->links); link; link = zhashx_next(self->links))
        if (now - link->last_heard >= self->config.link_idle_ms)
            zlistx_add_end(stale, link);
    for (zm_link_t *link = zlistx_first(stale); link; link = zlistx_next(stale))
        s_forget_link(self, link);
    zlistx_destroy(&stale);
}

//  glibc keeps memory freed below the top of its heap in the process: a
//  queue that held a million messages and drained would leave the broker's
//  resident size where it was (42 MiB instead of 10 after 1,000,000 x 16 B).
//  Once the queues freed S_TRIM_BYTES of chunks, and more than they still
//  hold (a drain, not a steady turnover whose chunks malloc reuses at once),
//  the heap is trimmed at the next tick: malloc_trim walks it and gives its
//  free pages back, which is cheap this rarely.
#define S_TRIM_BYTES ((size_t) 1 << 20)

static void
s_trim_heap(zm_engine_t *self)
{
    size_t freed = 0, held = 0;
    for (zm_pipeline_t *pipeline = zhashx_first(self->pipelines); pipeline;
         pipeline = zhashx_next(self->pipelines)) {
        freed += zm_itemq_freed(pipeline->queue);
        held += zm_itemq_footprint(pipeline->queue);
    }
    if (freed < S_TRIM_BYTES || freed < held)
        return;
    for (zm_pipeline_t *pipeline = zhashx_first(self->pipelines); pipeline;
         pipeline = zhashx_next(self->pipelines))
        zm_itemq_take_freed(pipeline->queue);
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

static void
s_tick_pipelines(zm_engine_t *self, int64_t now)
{
    s_trim_heap(self);
    zlistx_t *idle = zlistx_new();              //  borrowed
    for (zm_pipeline_t *pipeline = zhashx_first(self->pipelines); pipeline;
         pipeline = zhashx_next(self->pipelines))
        if (pipeline != self->parked_in && zm_pipeline_idle(pipeline, now, self->config.grace_ms))
            zlistx_add_end(idle, pipeline);
    for (zm_pipeline_t *pipeline = zlistx_first(idle); pipeline; pipeline = zlistx_next(idle))
        zhashx_delete(self->pipelines, pipeline->name);
    zlistx_destroy(&idle);
}

void
zm_engine_pipe_tick(zm_engine_t *self, int64_t now)
{
    s_tick_consumers(self, now);
    if (now >= self->links_swept_at + 1000) {     //  a 60 s limit needs no finer sweep
        s_tick_links(self, now);
        self->links_swept_at = now;
    }
    s_tick_pipelines(self, now);
}
