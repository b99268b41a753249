//  zm_proto - the ZMP/1 wire codec (schemas/ZMP.md): a zmsg_t to a typed
//  command and back. It checks every untrusted byte (frame count, sizes,
//  header fields, payload shape) and never asserts on them. No sockets, no
//  globals, no policy: the broker and the library decide what to do with a
//  command or a decode failure.
#ifndef ZM_PROTO_H_INCLUDED
#define ZM_PROTO_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#define ZM_PROTO_SIGNATURE "ZMP1"
#define ZM_NAME_MAX 255               //  service name bytes
#define ZM_REASON_MAX 255             //  DISCONNECT reason bytes
#define ZM_HEADER_MAX 512             //  header frame bytes
#define ZM_BODY_MAX_DEFAULT (1u << 20)
#define ZM_SLOTS_MAX 1024
#define ZM_HEARTBEAT_MIN 100
#define ZM_HEARTBEAT_MAX 60000
#define ZM_LIVENESS_MIN 2
#define ZM_LIVENESS_MAX 100
#define ZM_CREDIT_MAX 1000            //  CONSUME credit
#define ZM_ACK_MAX 48                 //  message ids in one ACK
#define ZM_WINDOW_MAX 1024            //  a stream's credit in one CALL, REQUEST or CREDIT
#define ZM_WINDOW_DEFAULT 16          //  a streamed CALL's window when it gives none
#define ZM_REPLICAS_MAX 16            //  replicas of one replicated service
#define ZM_SNAPSHOT_CHUNK (64u * 1024)  //  snapshot bytes in one SNAPSHOT, at most

//  Commands, named as in ZMP.md.
typedef enum {
    ZM_CMD_CALL = 1,
    ZM_CMD_REPLY,
    ZM_CMD_READY,
    ZM_CMD_REQUEST,
    ZM_CMD_HEARTBEAT,
    ZM_CMD_DISCONNECT,
    ZM_CMD_PROGRESS,
    ZM_CMD_PUSH,                      //  pipelines (ZMP.md section 16)
    ZM_CMD_ACCEPT,
    ZM_CMD_REFUSE,
    ZM_CMD_RESUME,
    ZM_CMD_DONE,
    ZM_CMD_CONSUME,
    ZM_CMD_DELIVER,
    ZM_CMD_ACK,
    ZM_CMD_RELEASE,
    ZM_CMD_PART,                      //  streamed replies (ZMP.md section 6.10)
    ZM_CMD_CREDIT,
    ZM_CMD_CANCEL,
    ZM_CMD_JOIN,                      //  replicated services (ZMP.md section 20)
    ZM_CMD_WRITE,
    ZM_CMD_APPLIED,
    ZM_CMD_MISSING,
    ZM_CMD_SYNC,
    ZM_CMD_SNAPSHOT,
} zm_cmd_t;

//  CALL flags. Receivers ignore bits they do not know.
#define ZM_CALL_PROGRESS 1u           //  the caller reads PROGRESS (a DEALER, never a REQ)
#define ZM_CALL_STREAM 2u             //  the caller reads PART and sends CREDIT and CANCEL
#define ZM_CALL_WRITE 4u              //  a write to a replicated service; request id = write id
#define ZM_CALL_QUORUM 8u             //  a read of a replicated service through the quorum

//  WRITE kinds.
#define ZM_WRITE_KIND_WRITE 0u
#define ZM_WRITE_KIND_QUORUM_READ 1u

//  READY flags.
#define ZM_READY_IDEMPOTENT 1u        //  a call may run again on another worker if this one dies
#define ZM_READY_STREAMS 2u           //  the worker reads REQUEST's window, CREDIT and CANCEL

//  PUSH flags.
#define ZM_PUSH_DONE 1u               //  answer DONE once a consumer acked the message

//  Wire status codes (ZMP.md, "Status codes"); stable across versions.
typedef enum {
    ZM_STATUS_OK = 200,
    ZM_STATUS_MALFORMED = 400,
    ZM_STATUS_DENIED = 403,
    ZM_STATUS_NO_SERVICE = 404,
    ZM_STATUS_EXPIRED = 408,
    ZM_STATUS_TOO_BIG = 413,
    ZM_STATUS_HANDLER_ERROR = 500,
    ZM_STATUS_WORKER_LOST = 502,
    ZM_STATUS_BUSY = 503,
    ZM_STATUS_BAD_VERSION = 505,
} zm_status_t;

//  One decoded command. Which fields hold data depends on cmd (see ZMP.md);
//  `service` names the service or, for pipeline commands, the pipeline.
typedef struct {
    zm_cmd_t cmd;
    uint64_t id;                      //  CALL, REPLY: request id; REQUEST, worker REPLY: ticket;
                                      //  PUSH, ACCEPT, REFUSE, DONE: seq; DELIVER: message id;
                                      //  RESUME: the last seq granted (0 = no limit);
                                      //  ACK: acks[0]; PART, CREDIT, CANCEL: request id
                                      //  (client side) or ticket (worker side);
                                      //  WRITE: write id; SYNC, SNAPSHOT: token; JOIN: the
                                      //  replica's id (optional field; 0 when absent)
    uint32_t status;                  //  REPLY, DISCONNECT, REFUSE, DONE, APPLIED
    uint32_t timeout_ms;              //  CALL, REQUEST (0 = none)
    uint32_t slots;                   //  READY
    uint32_t credit;                  //  CONSUME
    uint32_t heartbeat_ms;            //  READY, CONSUME
    uint32_t liveness;                //  READY, CONSUME
    uint32_t flags;                   //  CALL, READY (optional field; 0 when absent), PUSH
    uint32_t attempt;                 //  REQUEST: 1 for the first dispatch (0 when absent); DELIVER
    uint32_t extend_ms;               //  PROGRESS: how much longer the handler needs
    uint32_t window;                  //  CALL, REQUEST: a stream's first credit (0 when
                                      //  absent); CREDIT: parts granted
    uint64_t seq;                     //  PART: 1 for a stream's first part; JOIN, MISSING: the
                                      //  last write applied; WRITE, APPLIED, SNAPSHOT: the write's
    uint64_t epoch;                   //  JOIN, WRITE, APPLIED, MISSING, SNAPSHOT
    uint32_t replicas;                //  JOIN: the replication factor, 1..ZM_REPLICAS_MAX
    uint32_t quorum;                  //  JOIN: the write quorum, 0 (majority)..replicas
    uint32_t kind;                    //  WRITE: ZM_WRITE_KIND_*
    uint32_t index;                   //  SNAPSHOT: the chunk, from 0
    bool more;                        //  SNAPSHOT: more chunks follow
    uint32_t fields;                  //  decoded: header elements the sender wrote
    uint32_t ack_count;               //  ACK: ids in acks (1..ZM_ACK_MAX); RELEASE: 0..ZM_ACK_MAX
    uint64_t acks[ZM_ACK_MAX];        //  ACK, RELEASE: message ids
    char service[ZM_NAME_MAX + 1];    //  CALL, READY, REQUEST, JOIN; pipeline commands but ACK
    char reason[ZM_REASON_MAX + 1];   //  DISCONNECT; NUL-terminated
    zframe_t *body;                   //  owned; CALL, REQUEST, REPLY, PUSH, REFUSE, DELIVER,
                                      //  PART, WRITE, APPLIED, SNAPSHOT
} zm_proto_t;

//  What the decoder enforces on bodies.
typedef struct {
    size_t max_body;                  //  bytes; 0 = ZM_BODY_MAX_DEFAULT
    bool check_body;                  //  require exactly one msgpack object
    int max_depth;                    //  nesting bound when checking (<= 0: default)
} zm_proto_limits_t;

//  The outcome of a failed decode, for the error reply or the drop log.
typedef struct {
    zm_status_t status;               //  MALFORMED, TOO_BIG or BAD_VERSION
    const char *reason;               //  static text
    bool have_id;                     //  true if self->id was read before the failure
} zm_proto_error_t;

//  Initialises self to an empty command (no body).
void zm_proto_init(zm_proto_t *self);

//  Destroys the body, if any, and empties self.
void zm_proto_reset(zm_proto_t *self);

//  Decodes msg, which starts at the empty delimiter: [empty][header][body?].
//  Returns true and fills self (taking the body frame out of msg) on success.
//  Returns false and fills *error on any malformed input; self->cmd then
//  names the command if its name could be read (0 if not), so the caller
//  knows whether a would-be worker or a client is to be answered, and
//  error->have_id says whether self->id was read. The header is read in
//  order and checked before the frame count and the body, so a PUSH whose
//  header is good but whose frames or body are bad (error 400 or 413) still
//  has its pipeline in self->service and its seq in self->id, and the
//  broker can answer REFUSE(seq); for PUSH, have_id implies a valid
//  pipeline name (it comes before seq). Likewise CALL's request id. msg
//  stays the caller's either way. limits NULL means a body of at most
//  ZM_BODY_MAX_DEFAULT bytes, not checked as MessagePack; the limits apply
//  to every body: CALL, REQUEST, REPLY, PUSH, REFUSE, DELIVER, PART, WRITE
//  and APPLIED. A SNAPSHOT body has its own size bound instead of max_body:
//  ZM_SNAPSHOT_CHUNK bytes as a msgpack bin (ZM_SNAPSHOT_CHUNK + 5 bytes),
//  more is 413 (check_body still applies). have_id is also set for WRITE's
//  write id and for SYNC's and SNAPSHOT's token.
bool zm_proto_decode(zm_proto_t *self, zmsg_t *msg, const zm_proto_limits_t *limits,
                     zm_proto_error_t *error);

//  Encodes self as [empty][header][body?]. Takes self->body (NULL after);
//  a command that needs a body but has none gets an empty one (msgpack nil),
//  except REFUSE, which gets self->reason as a msgpack str. ACK writes
//  acks[0..ack_count) (1..ZM_ACK_MAX, asserted), not id.
zmsg_t *zm_proto_encode(zm_proto_t *self);

//  Builds a body frame holding a msgpack str (for error reasons).
zframe_t *zm_proto_reason_frame(const char *reason);

//  True if name is a valid service name: 1..255 bytes of 0x21..0x7e.
bool zm_proto_valid_name(const char *name, size_t size);

//  Maps a wire status to the public error code the caller sees (the one
//  table between the two); ZMESH_EPROTO for codes ZMP/1 does not define.
int zm_proto_status_error(uint32_t status);

//  The largest body a client or producer sends: $ZMESH_MAX_BODY (the
//  variable that also sets the broker's --max-body) if it holds a number
//  from 16 to 256 MiB, else ZM_BODY_MAX_DEFAULT, the broker's default.
size_t zm_max_body_default(void);

//  Log names.
const char *zm_proto_cmd_name(zm_cmd_t cmd);
const char *zm_proto_status_name(uint32_t status);

#endif
