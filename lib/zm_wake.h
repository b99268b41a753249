//  zm_wake - the stop request of an engine loop that runs in the caller's
//  thread (zmesh_worker_run, zmesh_replica_run): a flag and a self-pipe, so
//  that another thread or a signal handler can make the loop's poll return
//  and see the flag. Nothing here polls: the loop polls wake's fd itself.
#ifndef ZM_WAKE_H_INCLUDED
#define ZM_WAKE_H_INCLUDED

#include <signal.h>

typedef struct {
    int fd[2];                  //  owned: the pipe, both ends non-blocking; -1 when closed
    volatile sig_atomic_t requested;    //  a stop was asked for and not yet seen
} zm_wake_t;

//  Opens the pipe. Returns ZMESH_OK, or ZMESH_ESYS (errno says why) with
//  nothing open.
int zm_wake_open(zm_wake_t *self);

//  Closes the pipe; nothing if it is not open.
void zm_wake_close(zm_wake_t *self);

//  Asks the loop to stop. Async-signal-safe: a flag and a write(2).
void zm_wake_request(zm_wake_t *self);

//  The end the loop polls for ZMQ_POLLIN.
int zm_wake_fd(const zm_wake_t *self);

//  Reads what the pipe holds, so that it wakes the loop once per request.
void zm_wake_drain(zm_wake_t *self);

#endif
