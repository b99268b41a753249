//  replay_main - runs a fuzz target without libFuzzer: each argument is a
//  file, or a directory whose files (in name order) are fed one by one to
//  LLVMFuzzerTestOneInput. ctest runs it over the committed seed corpus and
//  the saved regressions in every build, so an input that once crashed stays
//  a test under gcc's ASan too. A directory that does not exist counts as
//  empty (most targets have no regressions); finding no input at all fails.
#include "fuzz_common.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

//  Targets that need no set-up leave this undefined.
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

//  Reads a whole file into an exactly sized heap block, so ASan sees a read
//  one byte past the input as libFuzzer's own buffer would. NULL on error.
static uint8_t *
s_read_file(const char *path, size_t *size_p)
{
    FILE *file = fopen(path, "rb");
    if (!file)
        return NULL;
    uint8_t *data = NULL;
    long size = -1;
    if (fseek(file, 0, SEEK_END) == 0 && (size = ftell(file)) >= 0
        && fseek(file, 0, SEEK_SET) == 0) {
        data = malloc(size > 0 ? (size_t) size : 1);
        if (data && fread(data, 1, (size_t) size, file) != (size_t) size) {
            free(data);
            data = NULL;
        }
    }
    fclose(file);
    *size_p = (size_t) size;
    return data;
}

//  Feeds one file to the target. Returns false if it cannot be read.
static bool
s_replay_file(const char *path)
{
    size_t size = 0;
    uint8_t *data = s_read_file(path, &size);
    if (!data) {
        fprintf(stderr, "replay: cannot read %s: %s\n", path, strerror(errno));
        return false;
    }
    printf("replay: %s (%zu bytes)\n", path, size);
    fflush(stdout);
    LLVMFuzzerTestOneInput(data, size);       //  never NULL, as with libFuzzer
    free(data);
    return true;
}

static int
s_skip_hidden(const struct dirent *entry)
{
    return entry->d_name[0] != '.';
}

//  Replays every regular file of a directory; adds them to *count_p.
static bool
s_replay_dir(const char *dir, size_t *count_p)
{
    struct dirent **entries;
    int entry_count = scandir(dir, &entries, s_skip_hidden, alphasort);
    if (entry_count < 0) {
        fprintf(stderr, "replay: cannot list %s: %s\n", dir, strerror(errno));
        return false;
    }
    bool ok = true;
    for (int i = 0; i < entry_count; i++) {
        char path[4096];
        struct stat info;
        snprintf(path, sizeof path, "%s/%s", dir, entries[i]->d_name);
        if (ok && stat(path, &info) == 0 && S_ISREG(info.st_mode)) {
            ok = s_replay_file(path);
            (*count_p)++;
        }
        free(entries[i]);
    }
    free(entries);
    return ok;
}

int
main(int argc, char *argv[])
{
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    size_t count = 0;
    for (int arg = 1; arg < argc; arg++) {
        struct stat info;
        bool ok = true;
        if (stat(argv[arg], &info) != 0)
            printf("replay: %s does not exist, nothing to replay there\n", argv[arg]);
        else if (S_ISDIR(info.st_mode))
            ok = s_replay_dir(argv[arg], &count);
        else {
            ok = s_replay_file(argv[arg]);
            count++;
        }
        if (!ok)
            return 1;
    }
    if (count == 0) {
        fprintf(stderr, "replay: no input found\n");
        return 1;
    }
    printf("replay: %zu inputs, all passed\n", count);
    return 0;
}
