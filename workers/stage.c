//  stage.c - a pipeline stage: N lanes, each a thread with its own consumer of the input
//  pipeline and its own producer into the output pipeline (library objects are not
//  thread-safe), running the handler on one message at a time.
//
//  Per message: handler, then (with an output) a send in ACCEPTED mode, then the input's ACK.
//  So an input is acknowledged only once its output is held by the broker; a stage killed at
//  any point loses nothing, and at worst its output is pushed twice (its input came again).
//
//  A message the handler fails on (the command died, or wrote a line that is not JSON) or whose
//  output the broker refused is not acknowledged: it must go to a consumer again, and the only
//  way the protocol has to give a message back is to end the consumer's session. Ending it at
//  once would also hand back every message the consumer had received and not handled yet,
//  each with one more attempt (and a message that reaches the broker's --max-deliveries is
//  dropped as poison). So a lane keeps its failed messages while it handles the others, and
//  ends its session (a new consumer takes over) only once failed messages fill its credit,
//  when nothing else can be handed back, or once the oldest failed one waited S_RETRY_MS.
//  A denial (this key may not consume the input, or push to the output) is the same for every
//  message: it stops the stage.
#include "stage.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "zm_alloc.h"
#include "zm_log.h"

#define S_SLICE_MS 200              //  longest wait between two looks at the stop flag
#define S_RETRY_MS 1000             //  longest a failed message is kept before it is handed back
#define S_ERROR_MAX 256             //  longest fatal error text, NUL included

//  zw_stage_stop runs in signal handlers: the flag must be a lock-free atomic.
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "atomic int must be lock-free for signal handlers");

//  One thread's share of the stage.
typedef struct {
    zw_stage_t *stage;          //  borrowed: the stage it belongs to
    int index;                  //  lane number, for logs
    pthread_t thread;           //  the lane's thread
    zmesh_consumer_t *consumer; //  owned: consumes the input
    zmesh_producer_t *producer; //  owned: feeds the output; NULL without one
    int failed;                 //  failed messages held, not acknowledged
    int64_t failed_at;          //  when the oldest of them failed (monotonic ms)
} s_lane_t;

struct zw_stage {
    zw_stage_config_t config;   //  strings borrowed from the caller
    zmesh_handler_fn *handler;  //  runs on every message
    void *arg;                  //  borrowed: the handler's argument
    s_lane_t *lanes;            //  owned array of config.threads lanes
    atomic_int stopping;        //  set by zw_stage_stop or a fatal error
    pthread_mutex_t lock;       //  guards error
    int status;                 //  the first fatal error, ZMESH_OK if none
    char error[S_ERROR_MAX];    //  its text
};

static int64_t
s_now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

zw_stage_t *
zw_stage_new(const zw_stage_config_t *config, zmesh_handler_fn *handler, void *arg)
{
    assert(config && config->broker && config->input);
    assert(config->threads >= 1 && config->credit >= 1);
    assert(handler);
    zw_stage_t *self = zm_alloc(sizeof *self);
    self->config = *config;
    self->handler = handler;
    self->arg = arg;
    self->lanes = zm_alloc((size_t) config->threads * sizeof *self->lanes);
    atomic_init(&self->stopping, 0);
    pthread_mutex_init(&self->lock, NULL);
    return self;
}

void
zw_stage_destroy(zw_stage_t **self_p)
{
    assert(self_p);
    zw_stage_t *self = *self_p;
    if (!self)
        return;
    pthread_mutex_destroy(&self->lock);
    free(self->lanes);
    free(self);
    *self_p = NULL;
}

void
zw_stage_stop(zw_stage_t *self)
{
    assert(self);
    atomic_store(&self->stopping, 1);
    if (self->config.stop)
        self->config.stop(self->config.stop_arg);
}

const char *
zw_stage_error(const zw_stage_t *self)
{
    assert(self);
    return self->error;
}

//  Records a fatal error (the first one wins) and stops every lane.
static void
s_fatal(zw_stage_t *self, int status, const char *what, const char *detail)
{
    pthread_mutex_lock(&self->lock);
    if (self->status == ZMESH_OK) {
        self->status = status;
        snprintf(self->error, sizeof self->error, "%s: %s%s%s", what, zmesh_strerror(status),
                 detail && detail[0] ? ": " : "", detail ? detail : "");
    }
    pthread_mutex_unlock(&self->lock);
    zw_stage_stop(self);
}

//  Creates the lane's consumer (a new session). Returns ZMESH_OK or the library's error.
static int
s_lane_consume(s_lane_t *lane)
{
    const zw_stage_config_t *config = &lane->stage->config;
    int err = ZMESH_OK;
    lane->consumer =
        zmesh_consumer_new_secure(config->broker, config->input, config->curve, &err);
    if (!lane->consumer)
        return err;
    zmesh_consumer_set_credit(lane->consumer, config->credit);
    if (config->heartbeat_ms || config->liveness)
        zmesh_consumer_set_heartbeat(lane->consumer,
                                     config->heartbeat_ms ? config->heartbeat_ms : 1000,
                                     config->liveness ? config->liveness : 3);
    lane->failed = 0;
    return ZMESH_OK;
}

//  Creates the lane's library objects. Returns ZMESH_OK or the library's error.
static int
s_lane_open(s_lane_t *lane)
{
    const zw_stage_config_t *config = &lane->stage->config;
    int err = s_lane_consume(lane);
    if (err != ZMESH_OK || !config->output)
        return err;
    lane->producer =
        zmesh_producer_new_secure(config->broker, config->output, config->curve, &err);
    if (!lane->producer)
        return err;
    zmesh_producer_set_mode(lane->producer, ZMESH_ACCEPTED);
    zmesh_producer_set_timeout(lane->producer, S_SLICE_MS);     //  waits in slices: see s_forward
    return ZMESH_OK;
}

//  Frees the lane's objects: the producer first (an output not accepted yet is dropped, and its
//  input, not acknowledged, comes again), then the consumer, whose DISCONNECT hands back what
//  the lane held.
static void
s_lane_close(s_lane_t *lane)
{
    zmesh_producer_destroy(&lane->producer);
    zmesh_consumer_destroy(&lane->consumer);
}

//  Pushes an output into the output pipeline and waits until the broker holds it, in slices so
//  that a stop is seen while the output pipeline is full. Returns ZMESH_OK, ZMESH_ECLOSED when
//  stopped first, or the refusal (ZMESH_EINVAL, ZMESH_ETOOBIG, ZMESH_EDENIED).
static int
s_forward(s_lane_t *lane, const void *data, size_t size)
{
    zw_stage_t *self = lane->stage;
    int rc = ZMESH_EAGAIN;
    while (rc == ZMESH_EAGAIN && !atomic_load(&self->stopping))
        rc = zmesh_producer_send(lane->producer, data, size, ZMESH_ACCEPTED);
    while (rc == ZMESH_ETIMEDOUT && !atomic_load(&self->stopping))
        rc = zmesh_producer_flush(lane->producer, S_SLICE_MS);     //  sent: wait for ACCEPT
    if (rc == ZMESH_EAGAIN || rc == ZMESH_ETIMEDOUT)
        rc = ZMESH_ECLOSED;
    return rc;
}

//  Keeps a failed message unacknowledged, to be handed back (see the file comment).
static void
s_keep_failed(s_lane_t *lane, const zmesh_delivery_t *delivery, const char *why)
{
    if (lane->failed++ == 0)
        lane->failed_at = s_now_ms();
    zm_log_warning("zmesh-worker: message not handled pipeline=%s id=%llu attempt=%lu "
                   "reason=\"%s\"; it goes back to the pipeline", lane->stage->config.input,
                   (unsigned long long) delivery->id, (unsigned long) delivery->attempt, why);
}

//  Runs one message through the handler and on to the output, then acknowledges it.
static void
s_handle(s_lane_t *lane, const zmesh_msg_t *msg, const zmesh_delivery_t *delivery)
{
    zw_stage_t *self = lane->stage;
    zmesh_msg_t *output = NULL;
    int rc = self->handler(msg, &output, self->arg);
    if (rc != ZMESH_OK) {
        zmesh_msg_destroy(&output);
        s_keep_failed(lane, delivery, "the command failed");
        return;
    }
    static const unsigned char nil = 0xc0;      //  a handler's NULL output means nil
    const void *data = output ? zmesh_msg_data(output) : &nil;
    size_t size = output ? zmesh_msg_size(output) : 1;
    if (lane->producer) {
        rc = s_forward(lane, data, size);
        if (rc == ZMESH_ECLOSED) {
            zmesh_msg_destroy(&output);
            return;                 //  stopping: the input comes again, its output maybe twice
        }
        if (rc == ZMESH_EDENIED) {
            //  Every output would be denied the same way: stop, and leave the input as it is.
            zmesh_msg_destroy(&output);
            s_fatal(self, rc, "cannot push", zmesh_producer_error(lane->producer));
            return;
        }
        if (rc != ZMESH_OK) {
            zmesh_msg_destroy(&output);
            s_keep_failed(lane, delivery, zmesh_producer_error(lane->producer));
            return;
        }
    }
    zm_log_debug("zmesh-worker: message handled pipeline=%s id=%llu attempt=%lu bytes=%zu "
                 "output=%s", self->config.input, (unsigned long long) delivery->id,
                 (unsigned long) delivery->attempt, size,
                 self->config.output ? self->config.output : "(dropped)");
    zmesh_msg_destroy(&output);
    rc = zmesh_consumer_ack(lane->consumer, delivery->id);
    if (rc != ZMESH_OK)
        zm_log_warning("zmesh-worker: cannot acknowledge pipeline=%s id=%llu error=\"%s\"",
                       self->config.input, (unsigned long long) delivery->id,
                       zmesh_strerror(rc));
}

//  Hands the failed messages back when it is time (see the file comment): a new session
//  replaces the one that holds them. Returns ZMESH_OK or the library's error.
static int
s_hand_back(s_lane_t *lane)
{
    const zw_stage_config_t *config = &lane->stage->config;
    if (lane->failed == 0
        || (lane->failed < config->credit && s_now_ms() - lane->failed_at < S_RETRY_MS))
        return ZMESH_OK;
    zm_log_info("zmesh-worker: handing back failed messages pipeline=%s lane=%d count=%d",
                config->input, lane->index, lane->failed);
    zmesh_consumer_destroy(&lane->consumer);
    return s_lane_consume(lane);
}

static void *
s_lane_run(void *arg)
{
    s_lane_t *lane = arg;
    zw_stage_t *self = lane->stage;
    while (!atomic_load(&self->stopping)) {
        int rc = s_hand_back(lane);
        if (rc != ZMESH_OK) {
            s_fatal(self, rc, "cannot consume again", NULL);
            break;
        }
        zmesh_msg_t *msg = NULL;
        zmesh_delivery_t delivery = {0};
        rc = zmesh_consumer_recv(lane->consumer, S_SLICE_MS, &msg, &delivery);
        if (rc == ZMESH_OK)
            s_handle(lane, msg, &delivery);
        else if (rc != ZMESH_EAGAIN && !(rc == ZMESH_ECLOSED && atomic_load(&self->stopping)))
            s_fatal(self, rc, "cannot consume", zmesh_consumer_error(lane->consumer));
        zmesh_msg_destroy(&msg);
    }
    return NULL;
}

int
zw_stage_run(zw_stage_t *self)
{
    assert(self);
    int threads = self->config.threads;
    int started = 0;
    for (int index = 0; index < threads; index++) {
        s_lane_t *lane = &self->lanes[index];
        lane->stage = self;
        lane->index = index;
        int rc = s_lane_open(lane);
        if (rc != ZMESH_OK) {
            s_fatal(self, rc, "cannot use the broker endpoint", self->config.broker);
            break;
        }
    }
    for (int index = 0; index < threads && !atomic_load(&self->stopping); index++) {
        if (pthread_create(&self->lanes[index].thread, NULL, s_lane_run, &self->lanes[index]))
            s_fatal(self, ZMESH_ESYS, "cannot start a thread", NULL);
        else
            started++;
    }
    for (int index = 0; index < started; index++)
        pthread_join(self->lanes[index].thread, NULL);
    for (int index = 0; index < threads; index++)
        s_lane_close(&self->lanes[index]);
    return self->status;
}
