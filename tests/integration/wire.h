//  wire - raw ZMP/1 messages for the bad-input tests: builds frames the way a
//  buggy or hostile peer would (no library in the way), sends them on a
//  plain CZMQ DEALER socket and decodes the broker's answer. It checks
//  nothing itself: the tests decide what the answer must be.
#ifndef ZM_WIRE_H_INCLUDED
#define ZM_WIRE_H_INCLUDED

#include "harness.h"
#include "zmesh.h"

#include <czmq.h>

#define ZM_WIRE_MAX_BODY 65536        //  --max-body of the brokers these tests start

//  An answer from the broker, decoded.
typedef struct {
    char command[16];                 //  "REPLY", "DISCONNECT" or "REQUEST"
    size_t frames;                    //  including the empty delimiter
    uint64_t id;                      //  REPLY: request id; REQUEST: ticket
    uint64_t status;                  //  REPLY, DISCONNECT
    char reason[256];                 //  str body if there is one; DISCONNECT: reason
    zframe_t *body;                   //  owned: REPLY or REQUEST body
} zm_wire_answer_t;

//  Appends a frame holding a copy of data.
void zm_wire_add(zmsg_t *msg, const void *data, size_t size);

//  Appends a frame with the packed bytes and destroys the builder.
void zm_wire_add_pack(zmsg_t *msg, zmesh_pack_t **pack_p);

//  [signature, command, id, service, 5000] plus `extra` more str fields.
zmesh_pack_t *zm_wire_header(const char *signature, const char *command, uint64_t id,
                             const char *service, int extra);

//  ["", ["ZMP1", "CALL", id, "echo", 5000], body]
zmsg_t *zm_wire_call(uint64_t id, const void *body, size_t size);

//  A CALL whose body is one msgpack bin 32 object of exactly total bytes.
zmsg_t *zm_wire_call_bin(uint64_t id, size_t total);

//  Waits up to timeout_ms for one message on sock that is not a HEARTBEAT
//  (a registered worker gets those), and decodes it as a REPLY, DISCONNECT
//  or REQUEST. False if nothing came or it was none of them.
bool zm_wire_recv(zsock_t *sock, zm_wire_answer_t *answer, int timeout_ms);

//  A DEALER connected to endpoint, owned by the harness. NULL on failure.
zsock_t *zm_wire_dealer(zm_harness_t *harness, const char *endpoint);

//  Starts a broker with --max-body ZM_WIRE_MAX_BODY and an echo worker, and
//  waits until the worker is registered. False if either failed.
bool zm_wire_start(zm_harness_t *harness, char *endpoint, size_t size);

//  True if a call to "echo" on client comes back with its request.
bool zm_wire_echo_ok(zmesh_client_t *client);

#endif
