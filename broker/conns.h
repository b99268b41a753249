//  conns - the broker's table of live connections when CURVE is on: which
//  descriptor carries which routing id, under which key. ROUTER lets a peer
//  pick its routing id, and gives it to a new connection once the old one
//  is gone; the table tells the transport when that happened, so the old
//  session ends before anything is sent to the newcomer, and which
//  connections to close when a key is removed. Pure data: no sockets.
#ifndef ZM_CONNS_H_INCLUDED
#define ZM_CONNS_H_INCLUDED

#include "zm_curve.h"

#include <czmq.h>

typedef struct zm_conns zm_conns_t;

zm_conns_t *zm_conns_new(void);
void zm_conns_destroy(zm_conns_t **self_p);

typedef enum {
    ZM_CONN_NEW,                //  the first message of a connection
    ZM_CONN_KNOWN,              //  another message of a known connection
    ZM_CONN_LATE,               //  from a connection already closed: its descriptor
                                //  is a live connection's now (not recorded, the
                                //  table unchanged)
} zm_conn_seen_t;

//  A message came on fd from key, with routing id id (hex; NULL on the
//  push endpoint). Appends to gone (strings the caller frees) the routing
//  ids whose earlier connection this proves closed: the id now arrives on
//  another descriptor, or a closing connection's descriptor now carries
//  another peer.
zm_conn_seen_t zm_conns_seen(zm_conns_t *self, int fd, const char *id, const char *key,
                             zlistx_t *gone);

//  True if a message on fd from key with routing id id is from the
//  connection the table already has on fd (zm_conns_seen would say KNOWN).
bool zm_conns_known(const zm_conns_t *self, int fd, const char *id, const char *key);

//  The connection on fd closed at now (ms). It stays in the table, closing,
//  until zm_conns_sweep: messages it sent before closing may still wait to
//  be read, and must still count as its own.
void zm_conns_closing(zm_conns_t *self, int fd, int64_t now);

//  Forgets the closing connections (all of them, or those closing since
//  before, in ms), appending their routing ids to gone.
void zm_conns_sweep(zm_conns_t *self, bool all, int64_t before, zlistx_t *gone);

typedef enum {
    ZM_CONN_NONE,               //  no live connection has the routing id
    ZM_CONN_LIVE,
    ZM_CONN_CLOSING,            //  its connection closed; not swept yet
} zm_conn_state_t;

zm_conn_state_t zm_conns_state(const zm_conns_t *self, const char *id);

//  Sets the tag of the connection on fd (the transport keeps its socket's
//  inode there, to tell it from a later socket given the same number).
void zm_conns_tag(zm_conns_t *self, int fd, uint64_t tag);

//  Calls fn with the descriptor and tag of each connection using key.
typedef void(zm_conns_fn)(void *arg, int fd, uint64_t tag);
void zm_conns_each_of_key(const zm_conns_t *self, const char *key, zm_conns_fn *fn, void *arg);

//  True, with its tag, if fd carries a connection of the table that has
//  not closed.
bool zm_conns_live_fd(const zm_conns_t *self, int fd, uint64_t *tag_p);

size_t zm_conns_size(const zm_conns_t *self);

#endif
