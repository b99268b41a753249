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

//  A message came on fd from key, with routing id id (hex; NULL on the
//  push endpoint). Appends to gone (strings the caller frees) the routing
//  ids whose earlier connection this proves closed: the id now arrives on
//  another descriptor, or the descriptor now carries another peer. Returns
//  true if the connection is new to the table: the caller may tag it.
bool zm_conns_seen(zm_conns_t *self, int fd, const char *id, const char *key, zlistx_t *gone);

//  Sets the tag of the connection on fd (the transport keeps its socket's
//  inode there, to tell it from a later socket given the same number).
void zm_conns_tag(zm_conns_t *self, int fd, uint64_t tag);

//  fd was closed. Appends its routing id, if it had one, to gone.
void zm_conns_closed(zm_conns_t *self, int fd, zlistx_t *gone);

//  True if id is the routing id of a live connection.
bool zm_conns_bound(const zm_conns_t *self, const char *id);

//  Calls fn with the descriptor and tag of each connection using key.
typedef void(zm_conns_fn)(void *arg, int fd, uint64_t tag);
void zm_conns_each_of_key(const zm_conns_t *self, const char *key, zm_conns_fn *fn, void *arg);

size_t zm_conns_size(const zm_conns_t *self);

#endif
