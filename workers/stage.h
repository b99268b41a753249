//  stage.h - zmesh-worker --pipeline: a pipeline stage. It consumes the input pipeline on N
//  threads (one consumer each), runs every message through a handler (the --exec bridge, or
//  echo), and pushes the handler's output into the output pipeline, or drops it when there is
//  none. An input is acknowledged only once its output is held by the broker, so a stage that
//  dies loses nothing: what it held comes again, to it or another stage.
#ifndef ZW_STAGE_H_INCLUDED
#define ZW_STAGE_H_INCLUDED

#include "zmesh.h"

typedef struct zw_stage zw_stage_t;

//  What a stage consumes and produces. Strings are borrowed until zw_stage_destroy.
typedef struct {
    const char *broker;         //  endpoint, or a comma-separated list of brokers
    const zmesh_curve_t *curve; //  the CURVE keys of every connection (borrowed); NULL: plain
    const char *input;          //  the pipeline consumed
    const char *output;         //  the pipeline fed; NULL: outputs are dropped
    int threads;                //  consumers, and handlers running at once, 1..1024
    int credit;                 //  messages each consumer holds at once, 1..1000
    int heartbeat_ms;           //  0: the library's default
    int liveness;               //  0: the library's default
    void (*stop)(void *arg);    //  may be NULL: tells the handler to give up (async-signal-safe)
    void *stop_arg;             //  borrowed: its argument
} zw_stage_config_t;

//  Creates a stage that runs handler(arg) on each message. Connects nothing yet.
zw_stage_t *zw_stage_new(const zw_stage_config_t *config, zmesh_handler_fn *handler, void *arg);

//  Frees the stage and sets *self_p to NULL. Call only once zw_stage_run returned.
void zw_stage_destroy(zw_stage_t **self_p);

//  Runs the stage until zw_stage_stop or a fatal error, then leaves the broker (the messages
//  held and not acknowledged go back to the pipeline) and returns once every thread ended.
//  Returns ZMESH_OK when stopped, ZMESH_EINVAL if the broker endpoint is unusable,
//  ZMESH_EDENIED if the broker's rules deny this key consuming the input or pushing to the
//  output, ZMESH_EPROTO if the broker refused a consumer (zw_stage_error says why).
int zw_stage_run(zw_stage_t *self);

//  Asks a running stage to stop, and calls config.stop so that handlers running give up: each
//  thread ends within a fraction of a second, or once its handler returned (the --exec bridge
//  bounds that by its own stop grace). A fatal error stops the stage the same way.
//  Async-signal-safe if config.stop is.
void zw_stage_stop(zw_stage_t *self);

//  Text of the fatal error zw_stage_run returned, borrowed; "" if none.
const char *zw_stage_error(const zw_stage_t *self);

#endif
