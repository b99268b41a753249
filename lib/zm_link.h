//  zm_link - a peer's connection to the broker, as the worker, consumer and
//  replica engines keep it: its DEALER, the broker list walked one endpoint
//  per connection, the heartbeat timing of ZMP.md section 10.1 (a HEARTBEAT
//  is due heartbeat_ms after the last message sent; the broker counts as
//  gone heartbeat_ms x liveness after the last message heard) and the
//  backoff before registering again after a DISCONNECT. The engine keeps
//  what is its own: the command it registers with, what a new connection or
//  a lost one does to its state, and the commands it sends and takes.
//  Nothing here blocks.
#ifndef ZM_LINK_H_INCLUDED
#define ZM_LINK_H_INCLUDED

#include "zm_endpoints.h"
#include "zm_proto.h"
#include "zmesh.h"

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#define ZM_LINK_BACKOFF_MIN 100     //  ms, first wait after the broker turned us away
#define ZM_LINK_BACKOFF_MAX 5000    //  ms, cap of the exponential backoff
#define ZM_LINK_LINGER_MS 500       //  lets a last DISCONNECT out when the socket closes

//  The fields are the engine's to read. It may set last_sent when it sends
//  without zm_link_send, and reconnect_at (a connection libzmq refused).
typedef struct {
    const char *name;           //  borrowed, static: the log prefix ("worker", ...)
    zm_endpoints_t *endpoints;  //  borrowed: the brokers, one per connection, round the list
    const zmesh_curve_t *curve; //  borrowed: CURVE keys of each socket; NULL: plain
    int heartbeat_ms;           //  as the registration tells the broker
    int liveness;
    int reconnect_max_ms;       //  cap of libzmq's own reconnects within one socket
    zsock_t *sock;              //  owned DEALER to the broker, NULL between connections
    uint32_t session;           //  counts connections
    int64_t last_heard;         //  ms: anything from the broker
    int64_t last_sent;          //  ms: anything to the broker
    int64_t reconnect_at;       //  ms: when sock is NULL, when to connect again
    int backoff;                //  ms: next wait after the broker turned us away
} zm_link_t;

//  Handles one command from the broker for an engine (the body may be
//  taken). Returns false to stop reading for now.
typedef bool(zm_link_command_fn)(void *engine, zm_proto_t *command);

//  Starts self with no connection; endpoints and curve are borrowed and
//  must outlive it. libzmq's reconnect cap starts at ZM_LINK_BACKOFF_MAX.
void zm_link_init(zm_link_t *self, const char *name, zm_endpoints_t *endpoints,
                  const zmesh_curve_t *curve, int heartbeat_ms, int liveness);

//  Opens a new DEALER (sends never block) to the first endpoint of the list
//  the first time and to the next one after that (a new socket also
//  resolves the host name again: containers move), and counts a session.
//  The old socket is closed at once: what it still queues belongs to a
//  session the broker ends, and must not register a ghost once a partition
//  heals. Returns ZMESH_OK, or ZMESH_EINVAL if libzmq refused the endpoint
//  (sock is NULL then).
int zm_link_connect(zm_link_t *self);

//  The endpoint of the current (or last tried) connection, borrowed.
const char *zm_link_endpoint(const zm_link_t *self);

//  Closes the socket at once, dropping whatever it still queues.
void zm_link_drop(zm_link_t *self);

//  Encodes and sends command (its body is taken) without blocking. Returns
//  ZMESH_OK, or ZMESH_EAGAIN / ZMESH_ESYS (logged at debug) when the socket
//  took nothing: libzmq's queue to a dead broker is full, and the silence
//  of the broker will make us connect again. Either way it counts as sent
//  for the heartbeat, so that a refused HEARTBEAT is not retried at once.
int zm_link_send(zm_link_t *self, zm_proto_t *command);

//  Reads what the broker sent, without blocking, at most max messages, and
//  hands each command to handler. Anything read counts as the broker's
//  sign of life; a malformed message is logged and dropped. Stops early
//  when nothing waits, when the socket is gone (a DISCONNECT) or when
//  handler returns false.
void zm_link_drain(zm_link_t *self, int max, zm_link_command_fn *handler, void *engine);

//  The broker takes us as registered: its next refusal waits the shortest
//  backoff again.
void zm_link_registered(zm_link_t *self);

//  Whether a DISCONNECT status is final for a worker or a replica (ZMP.md
//  section 7.2: 403, 413 and 505): registering again would be refused again.
bool zm_link_final(uint32_t status);

//  The broker ended the session (command is its DISCONNECT): drops the
//  socket and logs why. Unless final, the next connection is due after the
//  backoff plus 0 to 99 ms of jitter, and the backoff doubles up to
//  ZM_LINK_BACKOFF_MAX, so that a refused registration is not repeated in a
//  tight loop. Returns ZMESH_OK, or when final the error the refusal maps
//  to: ZMESH_EDENIED for 403, ZMESH_EPROTO for any other status.
int zm_link_disconnected(zm_link_t *self, const zm_proto_t *command, bool final);

//  Sends a HEARTBEAT if one is due at now. Returns true if a connection is
//  due instead: none is open and reconnect_at has come, or the broker has
//  been silent for heartbeat_ms x liveness (logged, with CURVE's hint). The
//  engine then connects (zm_link_connect) and registers.
bool zm_link_tick(zm_link_t *self, int64_t now);

//  Whether the broker has been silent for heartbeat_ms x liveness.
bool zm_link_silent(const zm_link_t *self, int64_t now);

//  Milliseconds from now until zm_link_tick has something to do; 0 if now.
long zm_link_wait_ms(const zm_link_t *self, int64_t now);

#endif
