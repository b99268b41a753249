//  hostile - shared pieces of the test_hostile_* tests: starts a broker with
//  the flags a test chooses next to an echo worker, sends a raw message on a
//  DEALER and checks the one REPLY it earns, watches a DEALER's connection
//  with a socket monitor (to see the broker kick it), reads one status
//  counter, a child's memory from /proc and its log, and draws reproducible
//  random bytes. It reports and never asserts: the tests decide.
#ifndef ZM_HOSTILE_H_INCLUDED
#define ZM_HOSTILE_H_INCLUDED

#include "harness.h"
#include "wire.h"

#include <czmq.h>

#define ZM_HOSTILE_TIMEOUT_MS 5000    //  one answer from the broker

//  What the request_id of an answer must be.
typedef enum {
    ZM_HOSTILE_ID_EXACT,              //  the id we sent: the broker could read it
    ZM_HOSTILE_ID_ZERO,               //  0: there was no id to read
    ZM_HOSTILE_ID_ANY,                //  ours or 0: the spec leaves it to the broker
} zm_hostile_id_t;

//  Starts a broker on tcp://127.0.0.1:* with the NULL-terminated flags (may
//  be NULL) and an echo worker for "echo", and waits until the worker is
//  registered. Returns the broker, or NULL if either failed.
zm_proc_t *zm_hostile_start(zm_harness_t *harness, const char *const flags[], char *endpoint,
                            size_t size);

//  The same, bound to bind (for example "ipc://DIR/broker.ipc").
zm_proc_t *zm_hostile_start_on(zm_harness_t *harness, const char *bind, const char *const flags[],
                               char *endpoint, size_t size);

//  Sends *msg_p on sock (taken, also on failure) and waits for one answer
//  that must be a three-frame REPLY with status and an id that follows rule.
//  Prints what came instead and returns false otherwise.
bool zm_hostile_expect(zsock_t *sock, zmsg_t **msg_p, uint64_t status, uint64_t id,
                       zm_hostile_id_t rule);

//  A DEALER connected to endpoint whose disconnections *monitor_p reports;
//  both are owned by the harness (the monitor is destroyed first).
//  routing_id may be NULL (libzmq's ROUTER then picks one per connection).
zsock_t *zm_hostile_watched_dealer(zm_harness_t *harness, const char *endpoint,
                                   const char *routing_id, zactor_t **monitor_p);

//  True if the monitor reports DISCONNECTED within timeout_ms; with 0, true
//  only if one was already reported. Takes one event per call.
bool zm_hostile_disconnected(zactor_t *monitor, int timeout_ms);


//  A field of /proc/PID/status in kB ("VmRSS", "VmHWM"); -1 if unreadable.
long zm_hostile_proc_kb(pid_t pid, const char *field);

//  True once the child's log holds text, polling until deadline_ms.
bool zm_hostile_log_has(const zm_proc_t *proc, const char *text, int deadline_ms);

//  True if the child has not exited (it is not reaped by this call either).
bool zm_hostile_alive(const zm_proc_t *proc);

//  splitmix64: the next number of the sequence that *state seeds.
uint64_t zm_hostile_random(uint64_t *state);

//  Fills buffer with size bytes of that sequence.
void zm_hostile_random_bytes(uint64_t *state, void *buffer, size_t size);

#endif
