//  engine - routes ZMP/1 calls from clients to workers and replies back.
//
//  A CALL is queued in its service and dispatched at once if a worker has a
//  free slot; a worker's REPLY goes back to the caller by ticket. Bad input
//  is answered (clients) or ends the session (workers), and every message
//  the broker does not deliver is counted by reason.
#include "engine_internal.h"

#include "zm_alloc.h"
#include "zm_hash.h"
#include "zm_log.h"
#include "zmesh.h"

#define S_GARBAGE_PEERS 10000       //  offenders tracked at once: the table is bounded too

//  Recent malformed messages from one peer.
typedef struct {
    uint32_t count;                 //  within the window
    int64_t since;                  //  ms: start of the window
    bool kicked;                    //  its connection is being closed: count no more
} s_garbage_t;

static void
s_service_destroy(void **item_p)
{
    zm_service_destroy((zm_service_t **) item_p);
}

static void
s_worker_destroy(void **item_p)
{
    zm_worker_destroy((zm_worker_t **) item_p);
}

static void
s_call_destroy(void **item_p)
{
    zm_call_destroy((zm_call_t **) item_p);
}

static void
s_free(void **item_p)
{
    free(*item_p);
    *item_p = NULL;
}

static void
s_msg_destroy(void **item_p)
{
    zmsg_destroy((zmsg_t **) item_p);
}

void
zm_engine_config_defaults(zm_engine_config_t *config)
{
    assert(config);
    config->grace_ms = 2000;
    config->max_queue = 1024;
    config->max_queue_bytes = (size_t) 64 << 20;
    config->max_services = 10000;
    config->max_attempts = 3;
    config->max_garbage = 16;
    config->garbage_window_ms = 10000;
    config->limits.max_body = ZM_BODY_MAX_DEFAULT;
    config->limits.check_body = true;
    config->limits.max_depth = 64;
    config->max_deliveries = 10;
    config->max_pipelines = 10000;
    config->max_links = 100000;
    config->link_idle_ms = 60000;
    config->epoch_base = 0;             //  the broker sets its start time
    config->epoch_salt = 0;             //  and a random salt
}

zm_engine_t *
zm_engine_new(const zm_engine_config_t *config, int64_t now)
{
    assert(config);
    zm_engine_t *self = zm_alloc(sizeof *self);
    self->config = *config;
    self->services = zhashx_new();
    zhashx_set_destructor(self->services, s_service_destroy);
    self->workers = zhashx_new();
    zhashx_set_destructor(self->workers, s_worker_destroy);
    self->worker_beats = zm_liveness_sched_new();
    self->consumer_beats = zm_liveness_sched_new();
    zm_proto_t heartbeat;
    zm_proto_init(&heartbeat);
    heartbeat.cmd = ZM_CMD_HEARTBEAT;
    self->heartbeat = zm_proto_encode(&heartbeat);
    self->calls = zm_hash_new_u64();
    self->unanswered = zhashx_new();
    self->garbage = zhashx_new();
    zhashx_set_destructor(self->garbage, s_free);
    self->outbox = zlistx_new();
    zlistx_set_destructor(self->outbox, s_msg_destroy);
    self->started_at = now;
    zm_engine_pipe_init(self);
    return self;
}

void
zm_engine_destroy(zm_engine_t **self_p)
{
    assert(self_p);
    zm_engine_t *self = *self_p;
    if (!self)
        return;
    zlistx_destroy(&self->outbox);
    zhashx_destroy(&self->garbage);
    zhashx_destroy(&self->unanswered);
    for (zm_call_t *call = zhashx_first(self->calls); call; call = zhashx_next(self->calls))
        zm_call_destroy(&call);                  //  the table only borrows them
    zhashx_destroy(&self->calls);
    zm_engine_pipe_destroy(self);
    zhashx_destroy(&self->workers);              //  workers borrow services: first
    zhashx_destroy(&self->services);
    zm_liveness_sched_destroy(&self->consumer_beats);  //  empty now: the peers left it
    zm_liveness_sched_destroy(&self->worker_beats);
    zmsg_destroy(&self->heartbeat);
    free(self);
    *self_p = NULL;
}

zmsg_t *
zm_engine_outbox_pop(zm_engine_t *self)
{
    assert(self);
    if (zlistx_size(self->outbox) == 0)
        zm_engine_pipe_report(self);
    return zlistx_detach(self->outbox, NULL);
}

const char *
zm_engine_hex(char *buffer, zframe_t *routing)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *data = zframe_data(routing);
    size_t size = zframe_size(routing);
    for (size_t i = 0; i < size && i < 255; i++) {
        buffer[2 * i] = digits[data[i] >> 4];
        buffer[2 * i + 1] = digits[data[i] & 15];
    }
    buffer[2 * (size < 255 ? size : 255)] = '\0';
    return buffer;
}

//  Queues command for the peer *routing_p, taking the routing frame.
void
zm_engine_emit(zm_engine_t *self, zframe_t **routing_p, zm_proto_t *command)
{
    zmsg_t *msg = zm_proto_encode(command);
    zmsg_prepend(msg, routing_p);
    zlistx_add_end(self->outbox, msg);
}

//  Queues a HEARTBEAT for routing, which the caller keeps: a copy of the
//  one encoded at start, since every heartbeat has the same header.
void
zm_engine_heartbeat(zm_engine_t *self, zframe_t *routing)
{
    zmsg_t *msg = zmsg_dup(self->heartbeat);
    zframe_t *copy = zframe_dup(routing);
    zmsg_prepend(msg, &copy);
    zlistx_add_end(self->outbox, msg);
}

//  Queues command for routing, which the caller keeps.
void
zm_engine_send(zm_engine_t *self, zframe_t *routing, zm_proto_t *command)
{
    zframe_t *copy = zframe_dup(routing);
    zm_engine_emit(self, &copy, command);
}

//  Answers a caller. Takes *body_p when given.
static void
s_reply(zm_engine_t *self, zframe_t *client, uint64_t request_id, uint32_t status,
        zframe_t **body_p)
{
    zm_proto_t reply;
    zm_proto_init(&reply);
    reply.cmd = ZM_CMD_REPLY;
    reply.id = request_id;
    reply.status = status;
    if (body_p) {
        reply.body = *body_p;
        *body_p = NULL;
    }
    zm_engine_send(self, client, &reply);
}

static void
s_reply_error(zm_engine_t *self, zframe_t *client, uint64_t request_id, uint32_t status,
              const char *reason)
{
    zframe_t *body = zm_proto_reason_frame(reason);
    s_reply(self, client, request_id, status, &body);
}

void
zm_engine_disconnect(zm_engine_t *self, zframe_t *routing, uint32_t status, const char *reason)
{
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = ZM_CMD_DISCONNECT;
    command.status = status;
    snprintf(command.reason, sizeof command.reason, "%s", reason);
    zm_engine_send(self, routing, &command);
}

static void s_dispatch(zm_engine_t *self, zm_service_t *service, int64_t now);

//  The call has its answer (or is dropped): a retry of it is a new call now.
static void
s_settle(zm_engine_t *self, zm_call_t *call)
{
    if (call->key) {
        zhashx_delete(self->unanswered, call->key);
        free(call->key);
        call->key = NULL;
        if (call->granted)
            self->open_streams--;
    }
}

//  True if a call its worker lost may run again: the worker said its calls
//  are idempotent, attempts are left, and somebody still waits for it.
static bool
s_may_retry(const zm_engine_t *self, const zm_worker_t *worker, const zm_call_t *call,
            int64_t now)
{
    return worker->idempotent && call->body && !call->answered && call->parts == 0
           && call->attempts < self->config.max_attempts
           && (!call->deadline || call->deadline > now);
}

//  Ends a worker session. Each call it held goes back to the head of its
//  service's queue if it may run again, else is answered WORKER_LOST (a
//  non-idempotent call must not run twice); then the worker is freed.
static void
s_retire(zm_engine_t *self, zm_worker_t *worker, const char *why, int64_t now)
{
    size_t lost = 0, requeued = 0;
    zm_call_t *call;
    zm_service_t *service = worker->service;
    //  Off the ready list first: what it held must not come back to it, even
    //  through a dispatch while its replica set stops (engine_repl.c).
    worker->withheld = true;
    zm_service_requeue_worker(service, worker, false);
    service->inflight -= zlistx_size(worker->inflight);
    zlistx_t *again = zlistx_new();             //  borrowed: calls to requeue, oldest first
    while ((call = zlistx_detach(worker->inflight, NULL))) {
        zhashx_delete(self->calls, ZM_HASH_KEY(call->ticket));
        call->worker = NULL;
        call->worker_handle = NULL;
        if (s_may_retry(self, worker, call, now)) {
            call->ticket = 0;
            zlistx_add_end(again, call);
            continue;
        }
        if (!call->answered) {
            bool expired = call->deadline && now >= call->deadline;
            s_reply_error(self, call->client, call->request_id,
                          expired ? ZM_STATUS_EXPIRED : ZM_STATUS_WORKER_LOST,
                          expired ? "the call's timeout passed while a worker held it"
                                  : "the worker holding the call was lost");
            if (expired)
                self->counters.expired++;
            else
                lost++;
            s_settle(self, call);
        }
        zm_call_destroy(&call);
    }
    //  Newest first, each to the head of the queue: they go out again in
    //  the order they came, before any call that came after them.
    for (call = zlistx_last(again); call; call = zlistx_prev(again)) {
        zm_service_requeue_call(service, call);
        requeued++;
    }
    zlistx_destroy(&again);
    self->counters.worker_lost += lost;
    self->counters.requeued += requeued;
    if (worker->member)
        zm_engine_repl_forget(self, worker, now);   //  may retire the service's other replicas
    zm_service_detach(service, worker, now);
    zm_log_info("broker: worker gone id=%s service=%s why=%s lost=%zu requeued=%zu", worker->id,
                service->name, why, lost, requeued);
    zhashx_delete(self->workers, worker->id);                     //  frees worker
    if (requeued || service->replset)
        s_dispatch(self, service, now);
}

void
zm_engine_settle(zm_engine_t *self, zm_call_t *call)
{
    s_settle(self, call);
}

void
zm_engine_answer(zm_engine_t *self, zm_call_t *call, uint32_t status, zframe_t **body_p)
{
    if (status == ZM_STATUS_OK)
        self->counters.replies++;
    else
        self->counters.handler_errors++;
    //  The hot path: header rewritten, body and routing frame moved, nothing copied.
    zm_proto_t reply;
    zm_proto_init(&reply);
    reply.cmd = ZM_CMD_REPLY;
    reply.id = call->request_id;
    reply.status = status;
    reply.body = *body_p;
    *body_p = NULL;
    zm_engine_emit(self, &call->client, &reply);
    s_settle(self, call);
}

//  Ends the session of a worker that broke the protocol.
static void
s_kick(zm_engine_t *self, zm_worker_t *worker, const char *reason, int64_t now)
{
    zm_worker_on_event(worker, ZM_WORKER_VIOLATION, now);
    zm_engine_disconnect(self, worker->routing, ZM_STATUS_MALFORMED, reason);
    self->counters.workers_kicked++;
    s_retire(self, worker, "violation", now);
}


void
zm_engine_retire_worker(zm_engine_t *self, zm_worker_t *worker, const char *why, int64_t now)
{
    s_retire(self, worker, why, now);
}

void
zm_engine_kick_worker(zm_engine_t *self, zm_worker_t *worker, const char *reason, int64_t now)
{
    s_kick(self, worker, reason, now);
}

void
zm_engine_reply_error(zm_engine_t *self, zframe_t *client, uint64_t request_id,
                      uint32_t status, const char *reason)
{
    s_reply_error(self, client, request_id, status, reason);
}

//  Sends queued calls to workers with free slots, least recently used first.
static void
s_dispatch(zm_engine_t *self, zm_service_t *service, int64_t now)
{
    if (service->replset) {
        zm_engine_repl_dispatch(self, service, now);    //  writes are sequenced, not sent
        return;
    }
    zm_worker_t *worker;
    while (zm_service_queued(service) > 0 && (worker = zm_service_next_worker(service))) {
        zm_call_t *call = zm_service_dequeue(service);
        if (call->deadline && now >= call->deadline) {
            //  Expired since the last tick: never hand a worker a call nobody waits for.
            s_reply_error(self, call->client, call->request_id, ZM_STATUS_EXPIRED,
                          "the call's timeout passed before a worker took it");
            self->counters.expired++;
            s_settle(self, call);
            zm_call_destroy(&call);
            continue;
        }
        zm_engine_send_call(self, service, call, worker, now);
    }
}

void
zm_engine_dispatch(zm_engine_t *self, zm_service_t *service, int64_t now)
{
    s_dispatch(self, service, now);
}

//  Hands call (dequeued) to worker, which has a free slot, as a REQUEST.
void
zm_engine_send_call(zm_engine_t *self, zm_service_t *service, zm_call_t *call,
                    zm_worker_t *worker, int64_t now)
{
    {
        call->ticket = ++self->next_ticket;
        call->attempts++;
        call->worker = worker;
        call->worker_handle = zlistx_add_end(worker->inflight, call);
        zhashx_insert(self->calls, ZM_HASH_KEY(call->ticket), call);
        zm_worker_on_event(worker, ZM_WORKER_DISPATCH, now);
        zm_service_requeue_worker(service, worker, true);
        service->inflight++;

        zm_proto_t request;
        zm_proto_init(&request);
        request.cmd = ZM_CMD_REQUEST;
        request.id = call->ticket;
        snprintf(request.service, sizeof request.service, "%s", service->name);
        if (call->deadline)
            request.timeout_ms = call->deadline > now ? (uint32_t) (call->deadline - now) : 1;
        request.attempt = worker->reads_attempt ? call->attempts : 0;   //  0: not sent
        if (call->granted && worker->streams) {
            //  The credit the client gave so far, CREDITs sent while it was queued included.
            request.window = (uint32_t) (call->granted - call->parts);
            self->counters.streams++;
        }
        if (worker->idempotent)
            request.body = zframe_dup(call->body);  //  kept, to run again if the worker dies
        else {
            request.body = call->body;          //  moved, never copied
            call->body = NULL;
        }
        zm_engine_send(self, worker->routing, &request);
        worker->peer.last_sent = now;
    }
}

zm_service_t *
zm_engine_service_require(zm_engine_t *self, const char *name, int64_t now)
{
    zm_service_t *service = zhashx_lookup(self->services, name);
    if (!service && zhashx_size(self->services) < self->config.max_services) {
        service = zm_service_new(name, self->config.max_queue, self->config.max_queue_bytes,
                                 now);
        zhashx_insert(self->services, name, service);
    }
    return service;
}

static void
s_on_call(zm_engine_t *self, zframe_t **client_p, const char *id, zm_proto_t *command,
          int64_t now)
{
    self->counters.calls++;
    zframe_t *client = *client_p;
    if (strncmp(command->service, "zmesh.", 6) == 0) {
        if (strcmp(command->service, "zmesh.status") == 0) {
            zframe_t *body = zm_engine_status(self, now);
            s_reply(self, client, command->id, ZM_STATUS_OK, &body);
            self->counters.replies++;
        }
        else {
            s_reply_error(self, client, command->id, ZM_STATUS_NO_SERVICE,
                          "no such built-in service");
            self->counters.rejected_no_service++;
        }
        return;
    }
    //  A stream's timeout bounds its silence (section 6.10): without one, a client that
    //  vanished without CURVE to tell us would hold the worker's slot for ever.
    if ((command->flags & ZM_CALL_STREAM) && command->timeout_ms == 0) {
        s_reply_error(self, client, command->id, ZM_STATUS_MALFORMED,
                      "a streamed call needs a timeout_ms: it bounds the stream's silence");
        self->counters.rejected_malformed++;
        return;
    }
    zm_service_t *service = zm_engine_service_require(self, command->service, now);
    if (!service) {
        s_reply_error(self, client, command->id, ZM_STATUS_BUSY, "too many services");
        self->counters.rejected_busy++;
        return;
    }
    //  A client retrying with the same request id while its call is still
    //  queued or held: the original's answer will serve both, and a
    //  non-idempotent call does not run twice.
    char key[ZM_ENGINE_ID_MAX + 24];
    snprintf(key, sizeof key, "%s:%" PRIu64, id, command->id);
    if (zhashx_lookup(self->unanswered, key)) {
        self->counters.duplicate_calls++;
        zm_log_debug("broker: duplicate call key=%s", key);
        return;
    }
    service->calls++;
    zm_call_t *call = zm_call_new(client_p, command, now);
    if (zm_service_enqueue(service, &call) != ZMESH_OK) {
        s_reply_error(self, call->client, call->request_id, ZM_STATUS_BUSY,
                      "the service's queue is full");
        self->counters.rejected_busy++;
        zm_call_destroy(&call);
        return;
    }
    zm_call_t *queued = zlistx_last(service->queue);
    queued->service = service;
    queued->key = zm_strdup(key);
    if (queued->granted)
        self->open_streams++;
    zhashx_insert(self->unanswered, key, queued);
    s_dispatch(self, service, now);
}

static void
s_on_ready(zm_engine_t *self, zframe_t **routing_p, const char *id, zm_proto_t *command,
           int64_t now)
{
    if (zm_engine_refuse_reserved(self, *routing_p, id, command->service, "service", now))
        return;
    zm_service_t *service = zm_engine_service_require(self, command->service, now);
    if (!service) {
        zm_engine_disconnect(self, *routing_p, ZM_STATUS_BUSY, "too many services");
        self->counters.rejected_busy++;
        return;
    }
    if (service->replset) {
        zm_engine_disconnect(self, *routing_p, ZM_STATUS_MALFORMED,
                             "the service is replicated: its replicas JOIN, they do not READY");
        self->counters.rejected_malformed++;
        return;
    }
    zm_worker_t *worker = zm_worker_new(routing_p, id, service, command, now);
    worker->streams = (command->flags & ZM_READY_STREAMS) != 0;
    if (self->sender)
        worker->key = zm_strdup(self->sender->key);
    zhashx_insert(self->workers, id, worker);
    zm_liveness_sched_add(self->worker_beats, &worker->peer, worker);
    zm_service_attach(service, worker);
    zm_log_info("broker: worker ready id=%s service=%s slots=%u heartbeat_ms=%u", id,
                service->name, worker->slots, worker->peer.heartbeat_ms);
    s_dispatch(self, service, now);
}

//  A worker's REPLY: forward it to the caller and free the slot.
static void
s_on_worker_reply(zm_engine_t *self, zm_worker_t *worker, zm_proto_t *command, int64_t now)
{
    if (command->status != ZM_STATUS_OK && command->status != ZM_STATUS_HANDLER_ERROR) {
        s_kick(self, worker, "a worker REPLY status must be 200 or 500", now);
        return;
    }
    zm_call_t *call = zm_hash_lookup(self->calls, command->id);
    if (!call || call->worker != worker) {
        //  Late (its call was already answered) or not this worker's: drop, count.
        //  Answering another worker's call is worth a line: a bug, or a forgery.
        zm_worker_on_event(worker, ZM_WORKER_STRAY, now);
        self->counters.dropped_late_reply++;
        if (call)
            zm_log_warning("broker: reply dropped: the call is another worker's id=%s "
                           "ticket=%" PRIu64 " holder=%s",
                           worker->id, command->id, call->worker ? call->worker->id : "none");
        else
            zm_log_debug("broker: stray reply id=%s ticket=%" PRIu64, worker->id, command->id);
        return;
    }
    zlistx_delete(worker->inflight, call->worker_handle);
    zm_worker_on_event(worker, ZM_WORKER_REPLY, now);
    zm_service_requeue_worker(worker->service, worker, false);
    worker->service->inflight--;
    if (call->answered) {                       //  the caller got 408, or cancelled
        if (!call->cancelled)
            self->counters.dropped_late_reply++;
    }
    else
        zm_engine_answer(self, call, command->status, &command->body);
    zhashx_delete(self->calls, ZM_HASH_KEY(call->ticket));
    zm_call_destroy(&call);
    s_dispatch(self, worker->service, now);
}

//  A handler says it needs extend_ms more: the call's deadline moves out
//  that far, and a caller that reads PROGRESS is told.
static void
s_on_progress(zm_engine_t *self, zm_worker_t *worker, zm_proto_t *command, int64_t now)
{
    zm_call_t *call = zm_hash_lookup(self->calls, command->id);
    if (!call || call->worker != worker || call->answered) {
        zm_worker_on_event(worker, ZM_WORKER_STRAY, now);      //  harmless: ignore
        return;
    }
    zm_worker_on_event(worker, ZM_WORKER_HEARTBEAT, now);
    self->counters.progress++;
    if (call->deadline && call->deadline < now + command->extend_ms)
        call->deadline = now + command->extend_ms;
    if (call->flags & ZM_CALL_PROGRESS) {
        zm_proto_t progress;
        zm_proto_init(&progress);
        progress.cmd = ZM_CMD_PROGRESS;
        progress.id = call->request_id;
        progress.extend_ms = command->extend_ms;
        zm_engine_send(self, call->client, &progress);
    }
}

//  A streamed call's deadline is a bound on its silence: each PART and each
//  CREDIT moves it out by the call's timeout.
static void
s_stream_alive(zm_call_t *call, int64_t now)
{
    if (call->deadline && call->deadline < now + call->timeout_ms)
        call->deadline = now + call->timeout_ms;
}

//  Tells the worker holding a streamed call to stop it (CANCEL): its client
//  is gone, cancelled it, or was answered 408. Workers that do not stream
//  get nothing: their one REPLY is dropped when it comes.
static void
s_stream_stop(zm_engine_t *self, zm_call_t *call)
{
    if (!call->granted || !call->worker || !call->worker->streams)
        return;
    zm_proto_t cancel;
    zm_proto_init(&cancel);
    cancel.cmd = ZM_CMD_CANCEL;
    cancel.id = call->ticket;
    zm_engine_send(self, call->worker->routing, &cancel);
}

//  Ends an unanswered call nobody waits for any more, with no answer: a
//  queued one leaves its queue; a held one keeps its worker's slot until the
//  REPLY, which is then dropped, and a streaming worker is told to stop.
static void
s_cancel(zm_engine_t *self, zm_call_t *call)
{
    self->counters.cancelled++;
    s_settle(self, call);
    if (call->sequenced) {
        //  A write in the replicas' hands: it goes on, and its answer goes nowhere.
        zframe_destroy(&call->client);
        call->client = zframe_new_empty();
        return;
    }
    if (!call->worker) {
        zm_service_remove_call(call->service, call);
        zm_call_destroy(&call);
        return;
    }
    zframe_destroy(&call->client);
    call->answered = true;
    call->cancelled = true;
    s_stream_stop(self, call);
}

//  A part of a streamed reply: checked against the stream's sequence and
//  credit (a worker past its credit would make the broker buffer without
//  bound: a protocol error), then forwarded with the body moved.
static void
s_on_part(zm_engine_t *self, zm_worker_t *worker, zm_proto_t *command, int64_t now)
{
    zm_call_t *call = zm_hash_lookup(self->calls, command->id);
    if (!call || call->worker != worker) {
        zm_worker_on_event(worker, ZM_WORKER_STRAY, now);       //  late: harmless
        self->counters.dropped_late_part++;
        return;
    }
    if (!call->granted || !worker->streams) {
        s_kick(self, worker, "PART for a call that is not streamed", now);
        return;
    }
    if (command->seq != call->parts + 1 || command->seq > call->granted) {
        s_kick(self, worker, "PART out of sequence or beyond the credit granted", now);
        return;
    }
    zm_worker_on_event(worker, ZM_WORKER_HEARTBEAT, now);
    call->parts = command->seq;
    if (call->answered) {
        self->counters.dropped_late_part++;     //  cancelled or 408: CANCEL is on its way
        return;
    }
    self->counters.parts++;
    s_stream_alive(call, now);
    zm_proto_t part;
    zm_proto_init(&part);
    part.cmd = ZM_CMD_PART;
    part.id = call->request_id;
    part.seq = command->seq;
    part.body = command->body;
    command->body = NULL;
    zm_engine_send(self, call->client, &part);
}

//  The unanswered call request_id of the client with routing id id, or NULL.
static zm_call_t *
s_client_call(zm_engine_t *self, const char *id, uint64_t request_id)
{
    char key[ZM_ENGINE_ID_MAX + 24];
    snprintf(key, sizeof key, "%s:%" PRIu64, id, request_id);
    return zhashx_lookup(self->unanswered, key);
}

//  A client read parts of a stream and grants that many more. The credit
//  outstanding stays within ZM_WINDOW_MAX parts, which bounds what one
//  stream can have in the broker's queues. A CREDIT for a call that is
//  answered or not streamed crossed its end: ignored.
static void
s_on_credit(zm_engine_t *self, const char *id, zm_proto_t *command, int64_t now)
{
    zm_call_t *call = s_client_call(self, id, command->id);
    if (!call || !call->granted)
        return;
    uint64_t outstanding = call->granted - call->parts;
    uint64_t more = command->window;
    if (outstanding + more > ZM_WINDOW_MAX)
        more = outstanding >= ZM_WINDOW_MAX ? 0 : ZM_WINDOW_MAX - outstanding;
    s_stream_alive(call, now);
    if (more == 0)
        return;
    call->granted += more;
    if (!call->worker || !call->worker->streams)
        return;                         //  queued: its REQUEST will carry the credit
    zm_proto_t credit;
    zm_proto_init(&credit);
    credit.cmd = ZM_CMD_CREDIT;
    credit.id = call->ticket;
    credit.window = (uint32_t) more;
    zm_engine_send(self, call->worker->routing, &credit);
}

static void
s_on_cancel(zm_engine_t *self, const char *id, zm_proto_t *command)
{
    zm_call_t *call = s_client_call(self, id, command->id);
    if (call)
        s_cancel(self, call);
}

//  A message from a registered worker.
static void
s_on_worker(zm_engine_t *self, zm_worker_t *worker, zm_proto_t *command, int64_t now)
{
    switch (command->cmd) {
    case ZM_CMD_REPLY:
        s_on_worker_reply(self, worker, command, now);
        return;
    case ZM_CMD_HEARTBEAT:
        zm_worker_on_event(worker, ZM_WORKER_HEARTBEAT, now);
        return;
    case ZM_CMD_PROGRESS:
        s_on_progress(self, worker, command, now);
        return;
    case ZM_CMD_PART:
        s_on_part(self, worker, command, now);
        return;
    case ZM_CMD_APPLIED:
    case ZM_CMD_MISSING:
    case ZM_CMD_SNAPSHOT:
        if (!worker->member)
            break;                              //  a plain worker: not its command
        zm_engine_repl_on_member(self, worker, command, now);
        return;
    case ZM_CMD_DISCONNECT:
        zm_worker_on_event(worker, ZM_WORKER_DISCONNECT, now);
        s_retire(self, worker, "disconnect", now);
        return;
    default:
        break;                                  //  CALL, READY, REQUEST, pipeline commands
    }
    zm_log_warning("broker: worker protocol violation id=%s cmd=%s state=%s", worker->id,
                   zm_proto_cmd_name(command->cmd), zm_worker_state_name(worker->state));
    s_kick(self, worker, "command not allowed for a worker", now);
}

//  A message from a peer that is not a registered worker.
static void
s_on_stranger(zm_engine_t *self, zframe_t **routing_p, const char *id, zm_proto_t *command,
              int64_t now)
{
    switch (command->cmd) {
    case ZM_CMD_CALL:
        s_on_call(self, routing_p, id, command, now);
        return;
    case ZM_CMD_READY:
        s_on_ready(self, routing_p, id, command, now);
        return;
    case ZM_CMD_JOIN:
        zm_engine_repl_on_join(self, routing_p, id, command, now);
        return;
    case ZM_CMD_HEARTBEAT:
    case ZM_CMD_REPLY:
    case ZM_CMD_PROGRESS:
    case ZM_CMD_PART:
    case ZM_CMD_APPLIED:
    case ZM_CMD_MISSING:
    case ZM_CMD_SNAPSHOT:
        //  A worker we do not know, typically after a broker restart.
        zm_engine_disconnect(self, *routing_p, ZM_STATUS_MALFORMED, "not registered");
        if (command->cmd == ZM_CMD_REPLY)
            self->counters.dropped_late_reply++;
        else if (command->cmd == ZM_CMD_PART)
            self->counters.dropped_late_part++;
        return;
    case ZM_CMD_CREDIT:
        s_on_credit(self, id, command, now);
        return;
    case ZM_CMD_CANCEL:
        s_on_cancel(self, id, command);
        return;
    case ZM_CMD_DISCONNECT:
        return;                                 //  already gone: nothing to do
    case ZM_CMD_PUSH:
        zm_engine_pipe_on_push(self, *routing_p, id, command, now);
        return;
    case ZM_CMD_CONSUME:
        zm_engine_pipe_on_consume(self, routing_p, id, command, now);
        return;
    case ZM_CMD_ACK:
    case ZM_CMD_RELEASE:
        //  A consumer we do not know (expired, or the broker restarted).
        self->counters.stray_acks += command->ack_count;
        zm_engine_disconnect(self, *routing_p, ZM_STATUS_MALFORMED, "not registered");
        return;
    case ZM_CMD_REQUEST:
    case ZM_CMD_ACCEPT:
    case ZM_CMD_REFUSE:
    case ZM_CMD_RESUME:
    case ZM_CMD_DONE:
    case ZM_CMD_DELIVER:
    case ZM_CMD_WRITE:
    case ZM_CMD_SYNC:
        s_reply_error(self, *routing_p, command->id, ZM_STATUS_MALFORMED,
                      "the command is sent by the broker only");
        self->counters.rejected_malformed++;
        zm_engine_count_garbage(self, id, now);
        return;
    }
}

bool
zm_engine_refuse_reserved(zm_engine_t *self, zframe_t *routing, const char *id,
                          const char *name, const char *what, int64_t now)
{
    if (strncmp(name, "zmesh.", 6) != 0)
        return false;
    char reason[64];
    snprintf(reason, sizeof reason, "%s names zmesh.* are reserved", what);
    zm_engine_disconnect(self, routing, ZM_STATUS_MALFORMED, reason);
    self->counters.rejected_malformed++;
    zm_engine_count_garbage(self, id, now);
    return true;
}

//  Counts one malformed message from a peer that is not a worker; at
//  max_garbage within the window, asks the transport to disconnect it: a
//  peer that keeps sending garbage costs the broker a reply each time.
void
zm_engine_count_garbage(zm_engine_t *self, const char *id, int64_t now)
{
    if (self->config.max_garbage == 0)
        return;
    s_garbage_t *entry = zhashx_lookup(self->garbage, id);
    if (!entry) {
        if (zhashx_size(self->garbage) >= S_GARBAGE_PEERS)
            return;                         //  full of offenders: answer, don't track
        entry = zm_alloc(sizeof *entry);
        entry->since = now;
        zhashx_insert(self->garbage, id, entry);
    }
    if (entry->kicked)
        return;         //  more of a burst that arrived before the connection closed
    if (now - entry->since >= self->config.garbage_window_ms) {
        entry->count = 0;
        entry->since = now;
    }
    if (++entry->count >= self->config.max_garbage) {
        zm_log_notice("broker: peer kicked id=%s garbage=%u", id, entry->count);
        self->counters.peers_kicked++;
        self->kick = true;
        entry->kicked = true;       //  kept until its window passes, then swept
    }
}

//  Input that did not decode: answer a client, kick a worker.
static void
s_on_malformed(zm_engine_t *self, zframe_t *routing, const char *id, zmsg_t *msg,
               const zm_proto_t *command, const zm_proto_error_t *error, int64_t now)
{
    char sample[65] = "";
    //  Sample the header frame: after the delimiter, or first when that is missing.
    zframe_t *header = zmsg_first(msg);
    if (header && zframe_size(header) == 0)
        header = zmsg_next(msg);
    if (header)
        zm_log_hex(sample, zframe_data(header), zframe_size(header));
    zm_log_warning("broker: bad message peer=%s status=%u reason=\"%s\" frames=%zu sample=%s", id,
                   error->status, error->reason, zmsg_size(msg), sample);
    zm_worker_t *worker = zhashx_lookup(self->workers, id);
    if (worker) {
        zm_worker_on_event(worker, ZM_WORKER_VIOLATION, now);
        zm_engine_disconnect(self, routing, error->status, error->reason);
        self->counters.workers_kicked++;
        s_retire(self, worker, "malformed", now);
        return;
    }
    zm_consumer_t *consumer = zhashx_lookup(self->consumers, id);
    if (consumer) {
        zm_engine_pipe_kick(self, consumer, error->status, error->reason, now);
        return;
    }
    zm_engine_count_garbage(self, id, now);
    if (error->status == ZM_STATUS_TOO_BIG)
        self->counters.rejected_too_big++;
    else if (error->status == ZM_STATUS_BAD_VERSION)
        self->counters.rejected_bad_version++;
    else
        self->counters.rejected_malformed++;
    if (command->cmd == ZM_CMD_READY || command->cmd == ZM_CMD_CONSUME)
        zm_engine_disconnect(self, routing, error->status, error->reason);  //  not REPLY
    else if (command->cmd == ZM_CMD_PUSH && error->have_id)
        zm_engine_pipe_on_bad_push(self, routing, id, command, error->status, error->reason,
                                   now);
    else
        s_reply_error(self, routing, error->have_id ? command->id : 0, error->status,
                      error->reason);
}

void
zm_engine_set_keyring(zm_engine_t *self, zm_keyring_t *keyring)
{
    assert(self);
    self->keyring = keyring;
}

void
zm_engine_on_message(zm_engine_t *self, zmsg_t **msg_p, const char *user_id, int64_t now)
{
    assert(self);
    assert(msg_p && *msg_p);
    zmsg_t *msg = *msg_p;
    zframe_t *routing = zmsg_pop(msg);
    if (!routing) {
        zmsg_destroy(msg_p);
        return;
    }
    char id[ZM_ENGINE_ID_MAX];
    zm_engine_hex(id, routing);
    zm_proto_t command;
    zm_proto_init(&command);
    zm_proto_error_t error;
    if (self->keyring && !zm_engine_auth_sender(self, id, user_id, now))
        ;                                       //  an unknown key: dropped, counted
    else if (!zm_proto_decode(&command, msg, &self->config.limits, &error))
        s_on_malformed(self, routing, id, msg, &command, &error, now);
    else {
        zm_worker_t *worker = zhashx_lookup(self->workers, id);
        zm_consumer_t *consumer = worker ? NULL : zhashx_lookup(self->consumers, id);
        if (worker)
            s_on_worker(self, worker, &command, now);
        else if (consumer)
            zm_engine_pipe_on_consumer(self, consumer, &command, now);
        else if (!self->keyring || zm_engine_auth_admit(self, routing, id, &command, now))
            s_on_stranger(self, &routing, id, &command, now);
    }
    self->sender = NULL;
    zm_proto_reset(&command);
    zframe_destroy(&routing);                   //  no-op if a call or worker took it
    zmsg_destroy(msg_p);
}

bool
zm_engine_take_kick(zm_engine_t *self)
{
    assert(self);
    bool kick = self->kick;
    self->kick = false;
    return kick;
}

//  The calls of a client whose connection closed: nobody can read their
//  answers any more, and a peer that takes the routing id later must not.
//  Each keeps running or waiting (its worker's slot is settled as usual),
//  addressed to an empty routing id no connection has, so its answer is
//  counted as undeliverable; a new CALL with the same request id is a new
//  call. A walk of the unanswered calls: a closed connection is rare next
//  to the calls.
static void
s_orphan_calls(zm_engine_t *self, const char *id, bool streams_only)
{
    size_t length = strlen(id);
    zlistx_t *orphans = zlistx_new();           //  borrowed: settle after the walk
    for (zm_call_t *call = zhashx_first(self->unanswered); call;
         call = zhashx_next(self->unanswered)) {
        const char *key = zhashx_cursor(self->unanswered);
        if (strncmp(key, id, length) == 0 && key[length] == ':')
            zlistx_add_end(orphans, call);
    }
    for (zm_call_t *call = zlistx_first(orphans); call; call = zlistx_next(orphans)) {
        if (call->granted) {
            s_cancel(self, call);               //  a stream: its worker must stop
            continue;
        }
        if (streams_only)
            continue;
        zframe_destroy(&call->client);
        call->client = zframe_new_empty();
        s_settle(self, call);
    }
    zlistx_destroy(&orphans);
}

void
zm_engine_on_gone(zm_engine_t *self, const char *id, int64_t now)
{
    assert(self);
    assert(id);
    zm_worker_t *worker = zhashx_lookup(self->workers, id);
    if (worker) {
        self->counters.sessions_closed++;
        zm_worker_on_event(worker, ZM_WORKER_DISCONNECT, now);
        s_retire(self, worker, "connection closed", now);
    }
    zm_consumer_t *consumer = zhashx_lookup(self->consumers, id);
    if (consumer) {
        self->counters.sessions_closed++;
        zm_engine_pipe_retire(self, consumer, "connection closed", now);
    }
    s_orphan_calls(self, id, false);
    zm_engine_pipe_forget_links(self, id);
}

void
zm_engine_on_send_failed(zm_engine_t *self, zframe_t *routing, bool full, int64_t now)
{
    assert(self);
    assert(routing);
    char id[ZM_ENGINE_ID_MAX];
    zm_worker_t *worker = zhashx_lookup(self->workers, zm_engine_hex(id, routing));
    if (worker) {
        //  Its calls are answered 502 and counted there; the worker is counted
        //  once, not the heartbeat or request that found it gone.
        self->counters.workers_unreachable++;
        zm_worker_on_event(worker, ZM_WORKER_DISCONNECT, now);
        s_retire(self, worker, full ? "queue full" : "unreachable", now);
        return;
    }
    if (zm_engine_pipe_send_failed(self, id, full, now))
        return;
    if (full)
        self->counters.dropped_peer_full++;
    else
        self->counters.dropped_unroutable++;
    //  A client gone: its streams' workers must stop. Without CURVE the transport sees no
    //  connection close, so a PART that cannot be forwarded is how the broker learns it (or,
    //  when the worker waits for credit, the stream's silence deadline). Only while streams
    //  are open: the walk of the unanswered calls must not cost every failed send.
    if (!full && self->open_streams > 0)
        s_orphan_calls(self, id, true);
    zm_log_debug("broker: undeliverable peer=%s reason=%s", id, full ? "full" : "gone");
}

//  Sends the HEARTBEATs due and retires the workers silent for too long.
//  Only the workers whose check has come are visited (liveness.h): with
//  every worker heartbeating, each is looked at about once per interval.
static void
s_tick_workers(zm_engine_t *self, int64_t now)
{
    zlistx_t *dead = NULL;                      //  borrowed: retire after the sweep
    zm_liveness_t *peer;
    while ((peer = zm_liveness_sched_pop(self->worker_beats, now))) {
        zm_worker_t *worker = peer->owner;
        if (zm_worker_expired(worker, now)) {
            if (!dead)
                dead = zlistx_new();
            zlistx_add_end(dead, worker);       //  stays out of the schedule
            continue;
        }
        if (zm_worker_heartbeat_due(worker, now)) {
            zm_engine_heartbeat(self, worker->routing);
            worker->peer.last_sent = now;
        }
        //  Not due (it was heard from, or sent a call, since it was
        //  scheduled) or just sent a HEARTBEAT: back in at its real next check.
        zm_liveness_sched_add(self->worker_beats, peer, worker);
    }
    if (!dead)
        return;
    //  All of them leave the ready lists first, so that a call one of them
    //  held is not requeued to another that is dying in the same tick. Then
    //  each is looked up again by its id: retiring a replica may end the
    //  sessions of its replica set's others (engine_repl.c).
    zlistx_t *ids = zlistx_new();               //  owned strings
    zlistx_set_destructor(ids, s_free);
    for (zm_worker_t *worker = zlistx_first(dead); worker; worker = zlistx_next(dead)) {
        zm_worker_on_event(worker, ZM_WORKER_EXPIRED, now);
        zm_service_requeue_worker(worker->service, worker, false);
        zlistx_add_end(ids, zm_strdup(worker->id));
    }
    zlistx_destroy(&dead);
    for (const char *id = zlistx_first(ids); id; id = zlistx_next(ids)) {
        zm_worker_t *worker = zhashx_lookup(self->workers, id);
        if (!worker)
            continue;
        self->counters.workers_expired++;
        s_retire(self, worker, "expired", now);
    }
    zlistx_destroy(&ids);
}

static void
s_tick_services(zm_engine_t *self, int64_t now)
{
    zlistx_t *expired = zlistx_new();           //  owned calls to answer
    zlistx_set_destructor(expired, s_call_destroy);
    zlistx_t *idle = zlistx_new();              //  borrowed services to drop
    for (zm_service_t *service = zhashx_first(self->services); service;
         service = zhashx_next(self->services)) {
        zm_service_expire(service, now, self->config.grace_ms, expired);
        if (service->replset)
            zm_engine_repl_tick(self, service, now);
        if (service->workers == 0 && zm_service_queued(service) == 0
            && (!service->replset || service->replset->unanswered == 0)
            && now - service->empty_since >= self->config.grace_ms)
            zlistx_add_end(idle, service);
    }
    for (zm_call_t *call = zlistx_first(expired); call; call = zlistx_next(expired)) {
        bool no_service = call->ticket == ZM_STATUS_NO_SERVICE;
        s_settle(self, call);
        s_reply_error(self, call->client, call->request_id, (uint32_t) call->ticket,
                      no_service ? "no worker offers this service"
                                 : "the call's timeout passed before a worker took it");
        if (no_service)
            self->counters.rejected_no_service++;
        else
            self->counters.expired++;
    }
    //  Forget idle names, so callers cannot grow the table without bound.
    for (zm_service_t *service = zlistx_first(idle); service; service = zlistx_next(idle))
        zhashx_delete(self->services, service->name);
    zlistx_destroy(&idle);
    zlistx_destroy(&expired);
}

//  Answers 408 for calls held by workers past their deadline. The call
//  stays in the table, so the worker's late REPLY still frees its slot.
static void
s_tick_calls(zm_engine_t *self, int64_t now)
{
    for (zm_call_t *call = zhashx_first(self->calls); call; call = zhashx_next(self->calls)) {
        if (call->answered || !call->deadline || now < call->deadline)
            continue;
        s_reply_error(self, call->client, call->request_id, ZM_STATUS_EXPIRED,
                      "the call's timeout passed while a worker held it");
        s_settle(self, call);
        zframe_destroy(&call->client);
        call->answered = true;
        self->counters.expired++;
        s_stream_stop(self, call);              //  a stream's worker stops sending
    }
}

//  Forgets offenders whose window has passed.
static void
s_tick_garbage(zm_engine_t *self, int64_t now)
{
    zlistx_t *stale = zlistx_new();             //  borrowed keys
    for (s_garbage_t *entry = zhashx_first(self->garbage); entry;
         entry = zhashx_next(self->garbage))
        if (now - entry->since >= self->config.garbage_window_ms)
            zlistx_add_end(stale, (void *) zhashx_cursor(self->garbage));
    for (const char *id = zlistx_first(stale); id; id = zlistx_next(stale))
        zhashx_delete(self->garbage, id);
    zlistx_destroy(&stale);
}

void
zm_engine_on_tick(zm_engine_t *self, int64_t now)
{
    assert(self);
    s_tick_garbage(self, now);
    s_tick_workers(self, now);
    s_tick_calls(self, now);
    s_tick_services(self, now);
    zm_engine_pipe_tick(self, now);
}
