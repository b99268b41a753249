//  zm_hash - integer keys for zhashx.
#include "zm_hash.h"

static size_t
s_hash(const void *key)
{
    uint64_t x = (uint64_t) (uintptr_t) key;
    x ^= x >> 33;                       //  a 64-bit finaliser: ids are sequential,
    x *= 0xff51afd7ed558ccdULL;         //  so spread them over the buckets
    x ^= x >> 33;
    return (size_t) x;
}

static int
s_compare(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) a, y = (uintptr_t) b;
    return x < y ? -1 : x > y;
}

zhashx_t *
zm_hash_new_u64(void)
{
    zhashx_t *self = zhashx_new();
    assert(self);
    zhashx_set_key_hasher(self, s_hash);
    zhashx_set_key_comparator(self, s_compare);
    zhashx_set_key_duplicator(self, NULL);
    zhashx_set_key_destructor(self, NULL);
    return self;
}
