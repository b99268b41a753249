//  zm_random - ids that must differ between processes and objects.
#include "zm_random.h"

#include <czmq.h>
#include <fcntl.h>
#include <unistd.h>

//  Spreads the bits of x (the finaliser of splitmix64).
static uint64_t
s_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

uint64_t
zm_random_id(const void *salt)
{
    uint64_t value = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    bool random = fd >= 0 && read(fd, &value, sizeof value) == (ssize_t) sizeof value;
    if (fd >= 0)
        close(fd);
    if (!random)
        value = s_mix((uint64_t) zclock_usecs() ^ ((uint64_t) getpid() << 32)
                      ^ (uint64_t) (uintptr_t) salt);
    value &= (UINT64_C(1) << 63) - 1;
    return value ? value : 1;
}
