//  zm_hash - a zhashx keyed by non-zero 64-bit integers (request ids,
//  tickets) stored in the key pointer itself: no key allocation per entry.
#ifndef ZM_HASH_H_INCLUDED
#define ZM_HASH_H_INCLUDED

#include <czmq.h>
#include <stdint.h>

//  Returns an empty table; look keys up with ZM_HASH_KEY(id), id != 0.
zhashx_t *zm_hash_new_u64(void);

#define ZM_HASH_KEY(id) ((const void *) (uintptr_t) (id))

#endif
