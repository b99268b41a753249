//  fuzz_json - fuzzes zm_json, the CLI's JSON <-> MessagePack conversion, in
//  both directions on every input. As MessagePack, the input must convert
//  exactly when zm_pack_check accepts it, unless one of the refusals only
//  JSON needs applies (bad UTF-8, NaN, a key twice, an overgrown key); the
//  JSON it gives must convert back, except in the one-way cases zm_json.h
//  lists, and that second round trip must give the same text again. As JSON
//  text, an accepted input must give MessagePack that zm_pack_check accepts
//  and that comes back through JSON byte for byte. Every refusal must come
//  with a one-line reason and leave the output pointer alone.
#include "fuzz_common.h"
#include "zm_json.h"
#include "zm_pack.h"

#include <stdlib.h>
#include <string.h>

//  Reasons zm_msgpack_to_json gives for well-formed MessagePack.
static const char *const s_json_only[] = {
    "str is not valid UTF-8",
    "NaN or infinity has no JSON form",
    "duplicate map key",
    "map key too long as JSON text",
};
#define S_JSON_ONLY (sizeof s_json_only / sizeof s_json_only[0])

static char s_untouched[] = "untouched";

//  The error contract: "" on success; else one non-empty line.
static void
s_check_error(int rc, const char *error)
{
    ZM_FUZZ_CHECK(memchr(error, '\0', ZM_JSON_ERROR_MAX) != NULL);
    if (rc == ZMESH_OK) {
        ZM_FUZZ_CHECK(error[0] == '\0');
        return;
    }
    ZM_FUZZ_CHECK(rc == ZMESH_EINVAL);
    ZM_FUZZ_CHECK(error[0] != '\0');
    for (const char *c = error; *c; c++)
        ZM_FUZZ_CHECK((unsigned char) *c >= 0x20 && *c != 0x7f);
}

//  zm_msgpack_to_json with its contract checked; NULL on refusal.
static char *
s_to_json(const void *data, size_t size, char *error)
{
    char *text = s_untouched;
    int rc = zm_msgpack_to_json(data, size, &text, error, ZM_JSON_ERROR_MAX);
    s_check_error(rc, error);
    if (rc != ZMESH_OK) {
        ZM_FUZZ_CHECK(text == s_untouched);
        return NULL;
    }
    ZM_FUZZ_CHECK(text != s_untouched && text != NULL);
    return text;
}

//  zm_json_to_msgpack with its contract checked; NULL on refusal.
static char *
s_to_msgpack(const char *text, size_t length, size_t *size_p, char *error)
{
    char *data = s_untouched;
    int rc = zm_json_to_msgpack(text, length, &data, size_p, error, ZM_JSON_ERROR_MAX);
    s_check_error(rc, error);
    if (rc != ZMESH_OK) {
        ZM_FUZZ_CHECK(data == s_untouched);
        return NULL;
    }
    ZM_FUZZ_CHECK(data != s_untouched && data != NULL && *size_p > 0);
    ZM_FUZZ_CHECK(zm_pack_check(data, *size_p, ZM_PACK_DEPTH_MAX) == ZMESH_OK);
    return data;
}

static bool
s_json_only_refusal(const char *error)
{
    for (size_t i = 0; i < S_JSON_ONLY; i++)
        if (strstr(error, s_json_only[i]))
            return true;
    return false;
}

//  The one-way cases of zm_json.h that JSON cannot carry back: a key holding
//  NUL (jansson refuses it), and a bin or ext at the depth limit, whose
//  {"$bin": ...} object is one level deeper than the bytes were.
static bool
s_one_way(const char *json, const char *error)
{
    if (strstr(error, "NUL byte in object key"))
        return true;
    return strstr(error, "nesting deeper than 64") && strstr(json, "\"$bin\":");
}

//  The input as MessagePack.
static void
s_from_msgpack(const uint8_t *data, size_t size)
{
    char error[ZM_JSON_ERROR_MAX];
    char *first = s_to_json(data, size, error);
    bool valid = zm_pack_check(data, size, ZM_PACK_DEPTH_MAX) == ZMESH_OK;
    if (!first) {
        ZM_FUZZ_CHECK(!valid || s_json_only_refusal(error));
        return;
    }
    ZM_FUZZ_CHECK(valid);
    size_t size2;
    char *data2 = s_to_msgpack(first, strlen(first), &size2, error);
    if (!data2) {
        ZM_FUZZ_CHECK(s_one_way(first, error));
        free(first);
        return;
    }
    char *second = s_to_json(data2, size2, error);
    ZM_FUZZ_CHECK(second != NULL);
    ZM_FUZZ_CHECK(strcmp(second, first) == 0);
    free(second);
    free(data2);
    free(first);
}

//  The input as JSON text.
static void
s_from_text(const uint8_t *data, size_t size)
{
    char error[ZM_JSON_ERROR_MAX];
    size_t packed_size;
    char *packed = s_to_msgpack((const char *) data, size, &packed_size, error);
    if (!packed)
        return;
    char *text = s_to_json(packed, packed_size, error);
    ZM_FUZZ_CHECK(text != NULL);
    size_t again_size;
    char *again = s_to_msgpack(text, strlen(text), &again_size, error);
    ZM_FUZZ_CHECK(again != NULL);
    ZM_FUZZ_CHECK(again_size == packed_size && memcmp(again, packed, packed_size) == 0);
    free(again);
    free(text);
    free(packed);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    s_from_msgpack(data, size);
    s_from_text(data, size);
    return 0;
}
