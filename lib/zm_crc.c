//  zm_crc - CRC-32C, reflected, polynomial 0x82F63B78, one table byte a step.
#include "zm_crc.h"

#include <pthread.h>

static uint32_t s_table[256];
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

static void
s_make_table(void)
{
    for (uint32_t byte = 0; byte < 256; byte++) {
        uint32_t value = byte;
        for (int bit = 0; bit < 8; bit++)
            value = (value & 1) ? (value >> 1) ^ 0x82F63B78u : value >> 1;
        s_table[byte] = value;
    }
}

uint32_t
zm_crc32c(uint32_t crc, const void *data, size_t size)
{
    pthread_once(&s_once, s_make_table);
    const uint8_t *bytes = data;
    crc = ~crc;
    for (size_t i = 0; i < size; i++)
        crc = s_table[(crc ^ bytes[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}
