//  zm_log - thin wrappers over CZMQ's zsys log functions.
#include "zm_log.h"

#include <czmq.h>
#include <stdarg.h>

static bool s_verbose = false;

void
zm_log_init(const char *ident, bool verbose)
{
    zsys_init();
    zsys_set_logstream(stderr);
    zsys_set_logident(ident);
    s_verbose = verbose;
}

bool
zm_log_verbose(void)
{
    return s_verbose;
}

#define ZM_LOG_BODY(sink)                                                                          \
    char line[1024];                                                                               \
    va_list args;                                                                                  \
    va_start(args, format);                                                                        \
    vsnprintf(line, sizeof line, format, args);                                                    \
    va_end(args);                                                                                  \
    sink("%s", line)

void
zm_log_error(const char *format, ...)
{
    ZM_LOG_BODY(zsys_error);
}

void
zm_log_warning(const char *format, ...)
{
    ZM_LOG_BODY(zsys_warning);
}

void
zm_log_notice(const char *format, ...)
{
    ZM_LOG_BODY(zsys_notice);
}

void
zm_log_info(const char *format, ...)
{
    ZM_LOG_BODY(zsys_info);
}

void
zm_log_debug(const char *format, ...)
{
    if (!s_verbose)
        return;
    ZM_LOG_BODY(zsys_debug);
}

const char *
zm_log_hex(char *buffer, const void *data, size_t size)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *bytes = data;
    size_t shown = size < 32 ? size : 32;
    for (size_t i = 0; i < shown; i++) {
        buffer[2 * i] = digits[bytes[i] >> 4];
        buffer[2 * i + 1] = digits[bytes[i] & 15];
    }
    buffer[2 * shown] = '\0';
    return buffer;
}
