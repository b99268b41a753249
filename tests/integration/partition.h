//  partition - cuts the network between a broker and a worker, then heals
//  it, for the partition test. With root and a working `ip netns`, the test
//  makes two network namespaces of its own joined by a veth pair (private
//  addresses 10.200.0.1 and .2, which exist only inside them): the test
//  process enters the broker's namespace (so the broker it starts and its
//  clients are there), the worker runs in the other, and a cut is the
//  worker's veth going down. Otherwise a TCP proxy on 127.0.0.1 stands
//  between worker and broker, and a cut stops it forwarding, without
//  closing anything, so bytes wait as they would for a dead link. It never
//  touches the host's own network, and it removes what it made.
#ifndef ZM_PARTITION_H_INCLUDED
#define ZM_PARTITION_H_INCLUDED

#include "harness.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct zm_partition zm_partition_t;

//  Sets up namespaces if it can, unless the environment variable
//  ZMESH_IT_PARTITION is "proxy"; else the proxy. Call it before the first
//  ZeroMQ socket of the process (libzmq's I/O threads must start in the
//  broker's namespace). Never NULL (aborts if not even the proxy can run).
zm_partition_t *zm_partition_new(void);

//  Stops the proxy or deletes the namespaces. Sets *self_p to NULL.
void zm_partition_destroy(zm_partition_t **self_p);

//  "netns" or "proxy".
const char *zm_partition_mode(const zm_partition_t *self);

//  The endpoint a broker binds, for example "tcp://10.200.0.1:*".
const char *zm_partition_bind(const zm_partition_t *self);

//  Given the broker's bound endpoint, writes the one a worker must use (the
//  broker's, or the proxy's). Returns false if the proxy cannot listen.
bool zm_partition_route(zm_partition_t *self, const char *broker, char *worker, size_t size);

//  Starts test-worker on the far side of the link (harness child).
zm_proc_t *zm_partition_worker(zm_partition_t *self, zm_harness_t *harness, const char *endpoint,
                               const char *service, const char *mode,
                               const char *const extra[]);

//  Cuts the link (true on success), and heals it.
bool zm_partition_cut(zm_partition_t *self);
bool zm_partition_heal(zm_partition_t *self);

#endif
