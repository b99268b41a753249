//  zm_random - ids that must differ between processes and objects: a
//  client's first request id (its write ids), a replica's id. Not for
//  secrets: CZMQ's zcert makes keys.
#ifndef ZM_RANDOM_H_INCLUDED
#define ZM_RANDOM_H_INCLUDED

#include <stdint.h>

//  A random value from 1 to 2^63 - 1: from /dev/urandom, or failing that
//  from the clock, the process id and salt (an address that differs
//  between the callers of one process).
uint64_t zm_random_id(const void *salt);

#endif
