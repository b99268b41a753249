//  exec.h - the --exec bridge of zmesh-worker: turns any program that reads JSON lines on stdin
//  and writes one JSON line per request on stdout into a zmesh service. Each request gets a
//  child process of its own for its duration (`/bin/sh -c CMD`, kept running across requests),
//  so handler threads never share a child.
#ifndef ZW_EXEC_H_INCLUDED
#define ZW_EXEC_H_INCLUDED

#include "zmesh.h"

typedef struct zw_exec zw_exec_t;

//  Creates a bridge to command (copied). Starts no child yet: each starts on first use.
zw_exec_t *zw_exec_new(const char *command);

//  Stops every child (stdin closed, SIGTERM, then SIGKILL after a grace), reaps them, frees the
//  bridge and sets *self_p to NULL. Call only once no handler runs any more.
void zw_exec_destroy(zw_exec_t **self_p);

//  A zmesh_handler_fn; arg is the zw_exec_t. Safe to run on many threads at once. On failure
//  the reply is a MessagePack str saying why, and the child is killed, to be restarted by the
//  next request.
int zw_exec_handler(const zmesh_msg_t *request, zmesh_msg_t **reply_p, void *arg);

//  Tells handlers the worker is stopping: a child that has not answered within a grace from
//  now is abandoned, so shutdown never waits on a hung program. Async-signal-safe.
void zw_exec_stop(zw_exec_t *self);

#endif
