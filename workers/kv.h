//  kv.h - the built-in key-value service of zmesh-worker, the state machine
//  only: put, delete and compare-and-set (writes), get and digest (reads),
//  a snapshot of the whole state and its restore. The replica layer gives it
//  writes in sequence order and asks for snapshots; it knows nothing of
//  sockets, disks or other replicas. Every outcome depends only on the
//  state and the request, so replicas that apply the same writes in the same
//  order hold the same state and answer the same.
//
//  Requests are MessagePack maps with "op":
//    {"op":"put","key":K,"value":V}              -> {"ok":true}
//    {"op":"get","key":K}                        -> {"found":true,"value":V} | {"found":false}
//    {"op":"delete","key":K}                     -> {"deleted":true|false}
//    {"op":"cas","key":K,"expected":E,"value":V} -> {"ok":true|false,"value":current}
//        (E nil: the key must be absent; values compare by their MessagePack bytes)
//    {"op":"digest"}                             -> {"digest":"<sha-1 hex>","keys":N}
//  K is a string of 1 to ZW_KV_KEY_MAX bytes without NUL; V any object.
#ifndef ZW_KV_H_INCLUDED
#define ZW_KV_H_INCLUDED

#include "zmesh.h"

#include <stdbool.h>
#include <stddef.h>

#define ZW_KV_KEY_MAX 1024
#define ZW_KV_DIGEST_HEX 41         //  SHA-1 in hex, NUL included

typedef struct zw_kv zw_kv_t;

zw_kv_t *zw_kv_new(void);
void zw_kv_destroy(zw_kv_t **self_p);

//  True if body is a request that changes the state (put, delete, cas);
//  false for reads and for anything that is not a request.
bool zw_kv_is_write(const void *body, size_t size);

//  Handles one request; write says how it came (a sequenced write, or a
//  read). Returns ZMESH_OK with *reply_p a MessagePack map as above, or
//  ZMESH_EHANDLER with *reply_p a MessagePack string that says why (not a
//  request, unknown op, bad key, a write sent as a read or the reverse).
//  A refused request changes nothing.
int zw_kv_handle(zw_kv_t *self, bool write, const void *body, size_t size,
                 zmesh_msg_t **reply_p);

//  The whole state as one MessagePack map, keys in byte order, so equal
//  states give equal bytes. *data_p is malloc'ed.
void zw_kv_snapshot(const zw_kv_t *self, void **data_p, size_t *size_p);

//  Replaces the state with a snapshot's; false (state unchanged) if the
//  bytes are not one.
bool zw_kv_restore(zw_kv_t *self, const void *data, size_t size);

//  SHA-1 of the snapshot, in lower-case hex.
void zw_kv_digest(const zw_kv_t *self, char hex[ZW_KV_DIGEST_HEX]);

size_t zw_kv_size(const zw_kv_t *self);

#endif
