//  zmesh_setup.h - what every zmesh benchmark sets up first: a zmesh-broker
//  child process, plain or with CURVE (fresh keys from `zmesh keygen`), and
//  the CURVE keys its peers load. Also runs the peer roles in child processes
//  forked before the parent touches libzmq, so each has its own I/O thread.
#ifndef BENCH_ZMESH_SETUP_H_INCLUDED
#define BENCH_ZMESH_SETUP_H_INCLUDED

#include "common.h"
#include "zmesh.h"

typedef struct {
    bench_broker_t broker;
    bench_keys_t keys;                  //  when curve is true
    bool curve;
    zmesh_curve_t *peer_curve;          //  owned; NULL when plain (load after forking)
} bench_setup_t;

//  Starts the broker (extra: more broker flags, NULL-terminated, may be NULL).
void bench_setup_start(bench_setup_t *self, bool curve, const char *const *extra);

//  The peer keys (NULL when plain), loaded on first use in this process.
const zmesh_curve_t *bench_setup_curve(bench_setup_t *self);

//  Stops the broker, removes the keys.
void bench_setup_stop(bench_setup_t *self);

//  Forks a child that runs body(arg) and exits with its return value.
//  Returns the child's pid.
pid_t bench_spawn(int (*body)(void *), void *arg);

//  Waits for a child up to timeout_ms; kills it (SIGKILL) if it has not
//  exited by then. Returns its exit status, or -1 if it had to be killed.
int bench_reap(pid_t pid, int timeout_ms);

#endif
