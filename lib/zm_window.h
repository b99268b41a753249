//  zm_window - a pipeline producer's messages that are not settled yet
//  (ZMP.md 16.4), as plain data: no sockets, no clock. Each message has a
//  token (the producer's count of sends, never reused) and a seq on the
//  current connection. The window sends in seq order, goes back to the
//  oldest unaccepted message when asked (go-back-N), settles messages on
//  cumulative ACCEPT, drops one refused for good, and follows the ones that
//  asked for DONE until it comes. The producer owns the socket and the
//  timers and tells the window what happened.
#ifndef ZM_WINDOW_H_INCLUDED
#define ZM_WINDOW_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct zm_window zm_window_t;

//  How far a message got, in order; a later stage implies the earlier ones.
typedef enum {
    ZM_WINDOW_UNSENT = 0,       //  waits for the socket
    ZM_WINDOW_SENT,             //  went out at least once on some connection
    ZM_WINDOW_ACCEPTED,         //  the broker took it; waits for DONE
    ZM_WINDOW_SETTLED,          //  finished: done with, or failed
} zm_window_stage_t;

zm_window_t *zm_window_new(void);

//  Frees the window and every message in it.
void zm_window_destroy(zm_window_t **self_p);

//  Adds a message (takes *body_p) sent in mode (ZMESH_QUEUED, _ACCEPTED or
//  _PROCESSED) and returns its token. It gets the next seq and waits to be sent.
uint64_t zm_window_add(zm_window_t *self, zframe_t **body_p, int mode);

//  The next message to send, oldest first: its seq, PUSH flags and body
//  (borrowed). False when every message in the window went out.
bool zm_window_peek(zm_window_t *self, uint64_t *seq_p, uint32_t *flags_p, zframe_t **body_p);

//  The message zm_window_peek returned went out.
void zm_window_sent(zm_window_t *self);

//  Go-back-N: every message not accepted yet goes out again, from the oldest.
void zm_window_rewind(zm_window_t *self);

//  A new connection: messages waiting for DONE fail (their DONE would come
//  on the old connection, if at all), and those not accepted get seqs 1, 2,
//  ... in order and go out again.
void zm_window_renumber(zm_window_t *self);

//  ACCEPT(seq): every message up to seq that went out on this connection
//  is settled. Returns how many messages it settled or moved on.
size_t zm_window_on_accept(zm_window_t *self, uint64_t seq);

//  REFUSE(seq, status): 503 is "full, send again from seq later": returns
//  true, after rewinding; the caller waits for RESUME. Any other status
//  fails that one message for good (reason says why). Returns false then,
//  and for a seq the window does not hold.
bool zm_window_on_refuse(zm_window_t *self, uint64_t seq, uint32_t status, const char *reason);

//  DONE(seq, status): the message that asked for it is finished.
void zm_window_on_done(zm_window_t *self, uint64_t seq, uint32_t status);

//  Messages not accepted yet: what fills the window.
size_t zm_window_unaccepted(const zm_window_t *self);

//  Messages not settled yet (not accepted, or waiting for DONE).
size_t zm_window_pending(const zm_window_t *self);

//  True if some message that went out waits for ACCEPT.
bool zm_window_in_flight(const zm_window_t *self);

//  Follows one message closely, for a send that waits for it.
void zm_window_watch(zm_window_t *self, uint64_t token);

//  How far the watched message got; when SETTLED, *rc_p (may be NULL) is
//  ZMESH_OK or why it failed. A failure of the watched message is not kept
//  for zm_window_take_failure: its sender reports it.
zm_window_stage_t zm_window_watched(const zm_window_t *self, int *rc_p);

//  The first failure since the last call (ZMESH_OK if none), and forgets it.
int zm_window_take_failure(zm_window_t *self);

//  Text of the failure zm_window_take_failure returned last, or of the
//  watched message's failure; "" if none. Borrowed.
const char *zm_window_error(const zm_window_t *self);

#endif
