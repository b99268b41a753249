//  rights - what one key may do: lists of fnmatch(3) patterns per right.
#include "rights.h"

#include "zm_alloc.h"

#include <assert.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

const char *
zm_right_name(zm_right_t right)
{
    static const char *names[ZM_RIGHT_COUNT] = {"serve", "call", "push", "pull"};
    assert(right < ZM_RIGHT_COUNT);
    return names[right];
}

static void
s_free_list(char ***list_p)
{
    if (*list_p) {
        for (char **item = *list_p; *item; item++)
            free(*item);
        free(*list_p);
        *list_p = NULL;
    }
}

void
zm_rights_set(zm_rights_t *self, zm_right_t right, const char *list)
{
    assert(self && right < ZM_RIGHT_COUNT);
    s_free_list(&self->patterns[right]);
    if (!list || !*list)
        return;
    size_t count = 1;
    for (const char *at = list; *at; at++)
        count += *at == ',';
    char **patterns = zm_alloc((count + 1) * sizeof *patterns);
    size_t taken = 0;
    const char *start = list;
    while (true) {
        const char *end = strchr(start, ',');
        if (!end)
            end = start + strlen(start);
        const char *first = start, *last = end;
        while (first < last && (*first == ' ' || *first == '\t'))
            first++;
        while (last > first && (last[-1] == ' ' || last[-1] == '\t'))
            last--;
        if (last > first)
            patterns[taken++] = zm_strndup(first, (size_t) (last - first));
        if (!*end)
            break;
        start = end + 1;
    }
    patterns[taken] = NULL;
    if (taken == 0)
        free(patterns);
    else
        self->patterns[right] = patterns;
}

void
zm_rights_clear(zm_rights_t *self)
{
    assert(self);
    for (int right = 0; right < ZM_RIGHT_COUNT; right++)
        s_free_list(&self->patterns[right]);
    self->admin = false;
}

bool
zm_rights_allow(const zm_rights_t *self, zm_right_t right, const char *name)
{
    assert(self && right < ZM_RIGHT_COUNT && name);
    if (strncmp(name, "zmesh.", 6) == 0)
        return right == ZM_RIGHT_CALL && self->admin;
    char **patterns = self->patterns[right];
    for (char **pattern = patterns; pattern && *pattern; pattern++)
        if (fnmatch(*pattern, name, 0) == 0)
            return true;
    return false;
}
