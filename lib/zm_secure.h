//  zm_secure - what the clients, workers, producers and consumers of
//  libzmesh do with a zmesh_curve_t: keep a copy of it, and make each socket
//  they open to a broker a CURVE client with it. Nothing here decides
//  whether to use CURVE: a NULL curve means a plain connection.
#ifndef ZM_SECURE_H_INCLUDED
#define ZM_SECURE_H_INCLUDED

#include "zmesh.h"

#include <czmq.h>

//  A copy of curve for an object to own, or NULL if curve is NULL.
zmesh_curve_t *zm_secure_dup(const zmesh_curve_t *curve);

//  Makes sock a CURVE client of the broker with curve's keys; nothing if
//  curve is NULL. Call before connecting.
void zm_secure_apply(const zmesh_curve_t *curve, zsock_t *sock);

//  A hint for the error text of a broker that stays silent, "" without
//  curve: with CURVE, a wrong broker key or a key the broker does not know
//  look exactly like a broker that is not there.
const char *zm_secure_hint(const zmesh_curve_t *curve);

#endif
