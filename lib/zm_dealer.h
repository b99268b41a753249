//  zm_dealer - what the peers of libzmesh that hold a DEALER to a broker
//  (producer, consumer, worker, replica) share about it: checking the broker
//  list and the pipeline or service name given to _new, opening a socket to
//  one broker, and sending and reading one ZMP command without blocking. No
//  policy: when to reconnect or fail over is the caller's (zm_link for the
//  peers that register).
#ifndef ZM_DEALER_H_INCLUDED
#define ZM_DEALER_H_INCLUDED

#include "zm_endpoints.h"
#include "zm_proto.h"
#include "zmesh.h"

#include <czmq.h>
#include <stdbool.h>

//  Largest body a peer accepts from a broker; the broker enforces its own,
//  smaller limit on what it takes.
#define ZM_DEALER_BODY_MAX ((size_t) 256 << 20)

//  The cap of libzmq's reconnect backoff for a producer's or consumer's
//  socket (zm_dealer_open's reconnect_max_ms).
#define ZM_DEALER_RECONNECT_MAX 2000

//  Checks a pipeline or service name (valid, not reserved) and a broker list whose
//  every endpoint libzmq can connect to (probed with curve's keys, if not
//  NULL, as the real connections will be). Returns the parsed list, or NULL
//  with *err_p (may be NULL) set to ZMESH_EINVAL.
zm_endpoints_t *zm_dealer_check(const char *endpoint, const char *pipeline,
                                const zmesh_curve_t *curve, int *err_p);

//  A new DEALER connected to endpoint, or NULL if libzmq refuses the
//  endpoint. Sends never block (SNDTIMEO 0). With immediate, libzmq queues
//  messages only on a connection that is up, so a send to a broker that is
//  not there fails at once instead of waiting in a queue. linger_ms is how
//  long a close may still try to deliver what is queued. libzmq reconnects
//  by itself with exponential backoff and jitter up to reconnect_max_ms,
//  resolving the host name again each time (containers move). With curve
//  (may be NULL) the socket is a CURVE client of the broker.
zsock_t *zm_dealer_open(const char *endpoint, bool immediate, int linger_ms, int reconnect_max_ms,
                        const zmesh_curve_t *curve);

//  Closes *sock_p at once, dropping whatever it still queues: a connection
//  that is abandoned must not deliver stale commands later. NULL is fine.
void zm_dealer_abandon(zsock_t **sock_p);

//  Sends *msg_p, then last (if not NULL, borrowed) as its final frame,
//  without blocking and without copying bytes. Returns ZMESH_OK (*msg_p is
//  destroyed), ZMESH_EAGAIN (nothing was sent: *msg_p is still the
//  caller's) or ZMESH_ESYS (destroyed: a part may have gone out).
int zm_dealer_send_msg(zsock_t *sock, zmsg_t **msg_p, zframe_t *last);

//  Encodes and sends command (its body is taken) without blocking. body,
//  if not NULL, is borrowed and goes out instead of command's body without
//  a copy of its bytes (libzmq counts references), so a message kept for a
//  resend costs nothing to send again. Returns ZMESH_OK, ZMESH_EAGAIN when
//  the socket takes nothing now (nothing was sent), or ZMESH_ESYS.
int zm_dealer_send(zsock_t *sock, zm_proto_t *command, zframe_t *body);

//  Reads one message, without blocking, into command. Returns true if a
//  well-formed command came; false if none was waiting or it was malformed
//  (logged under role, dropped).
bool zm_dealer_recv(zsock_t *sock, zm_proto_t *command, const char *role);

#endif
