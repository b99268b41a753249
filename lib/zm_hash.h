//  zm_hash - a zhashx keyed by non-zero 64-bit integers (request ids,
//  tickets) stored in the key pointer itself: no key allocation per entry.
#ifndef ZM_HASH_H_INCLUDED
#define ZM_HASH_H_INCLUDED

#include <czmq.h>
#include <stdint.h>

//  Returns an empty table; insert with ZM_HASH_KEY(id), id != 0.
zhashx_t *zm_hash_new_u64(void);

#define ZM_HASH_KEY(id) ((const void *) (uintptr_t) (id))

//  Looks id up. An id of 0 is never stored, and CZMQ asserts on a NULL key,
//  so 0 is answered here: ids come off the wire, where 0 is a legal value.
static inline void *
zm_hash_lookup(zhashx_t *self, uint64_t id)
{
    return id ? zhashx_lookup(self, ZM_HASH_KEY(id)) : NULL;
}

#endif
