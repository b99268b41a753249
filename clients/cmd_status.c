//  cmd_status.c - `zmesh status`: calls the broker's reserved service "zmesh.status" and prints
//  its reply, as one JSON line (--json) or as tables of services, pipelines, workers, each
//  replicated service with its replicas, the keys of a CURVE broker and every counter.
//  The reply comes from the network: a missing or odd field prints as "-", control bytes in
//  strings print as '?', and nothing in it is asserted.
#define _GNU_SOURCE                 //  asprintf, vasprintf

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "zm_alloc.h"
#include "zm_json.h"

#define S_COLUMNS_MAX 12

//  One column of a table: which field of each row object it shows.
typedef struct {
    const char *key;            //  field name in the row object
    const char *title;          //  column header
    bool number;                //  right-aligned
} s_column_t;

static const s_column_t s_service_columns[] = {
    {"name", "NAME", false},        {"workers", "WORKERS", true}, {"slots", "SLOTS", true},
    {"inflight", "INFLIGHT", true}, {"queued", "QUEUED", true},   {"calls", "CALLS", true},
};

//  ZMP.md 16.9. "drops" is a map of counts by reason, shown as "reason=count ...".
static const s_column_t s_pipeline_columns[] = {
    {"name", "NAME", false},          {"queued", "QUEUED", true},
    {"in_flight", "INFLIGHT", true},  {"delivered", "DELIVERED", true},
    {"acked", "ACKED", true},         {"redelivered", "REDELIVERED", true},
    {"consumers", "CONSUMERS", true}, {"credit", "CREDIT", true},
    {"free_credit", "FREE", true},    {"waiting_producers", "WAITING", true},
    {"refused_full", "REFUSED", true}, {"drops", "DROPS", false},
};

static const s_column_t s_worker_columns[] = {
    {"id", "ID", false},          {"service", "SERVICE", false},  {"slots", "SLOTS", true},
    {"inflight", "INFLIGHT", true}, {"served", "SERVED", true}, {"silent_ms", "SILENT_MS", true},
};

//  ZMP.md 20: the replicas of one replicated service.
static const s_column_t s_member_columns[] = {
    {"id", "ID", false},
    {"state", "STATE", false},
    {"seq", "SEQ", true},
    {"lag", "LAG", true},
};

//  ZMP.md 18: the keys a CURVE broker knows, and what each sent.
static const s_column_t s_key_columns[] = {
    {"name", "NAME", false},
    {"key", "KEY", false},
    {"messages", "MESSAGES", true},
    {"denied", "DENIED", true},
};

//  The text of one value in a table cell, malloc'ed.
static char *
s_cell(const json_t *value)
{
    char *text = NULL;
    if (json_is_string(value)) {
        text = zm_strdup(json_string_value(value));
        for (char *byte = text; *byte; byte++) {
            if ((unsigned char) *byte < 0x20 || *byte == 0x7f)
                *byte = '?';    //  a broker's string must not drive our terminal
        }
        return text;
    }
    int size = 0;
    if (json_is_integer(value))
        size = asprintf(&text, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
    else if (json_is_real(value))
        size = asprintf(&text, "%g", json_real_value(value));
    else if (json_is_boolean(value))
        size = asprintf(&text, "%s", json_is_true(value) ? "true" : "false");
    else
        size = asprintf(&text, "-");
    if (size < 0)
        abort();                //  out of memory aborts, as zm_alloc does
    return text;
}

//  "reason=count" for each drop reason of a pipeline, space-separated; "-" when there is none.
static json_t *
s_drops_text(const json_t *drops)
{
    char *text = zm_strdup("");
    const char *reason;
    json_t *count;
    json_object_foreach((json_t *) drops, reason, count) {
        char *cell = s_cell(count);
        char *joined = NULL;
        if (asprintf(&joined, "%s%s%s=%s", text, text[0] ? " " : "", reason, cell) < 0)
            abort();            //  out of memory aborts, as zm_alloc does
        free(cell);
        free(text);
        text = joined;
    }
    json_t *value = json_string(text[0] ? text : "-");
    free(text);
    return value;
}

//  The pipelines of the reply as table rows: the map "name": {fields} becomes an array of
//  {fields, "name": name}, drops as text. An array of rows with a name each is taken as it is.
//  The rows of a table from a map keyed by name (each row gets "name"), or
//  from an array of row objects.
static json_t *
s_map_rows(const json_t *map)
{
    json_t *rows = json_array();
    const char *name;
    json_t *fields;
    size_t index;
    if (json_is_object(map)) {
        json_object_foreach((json_t *) map, name, fields) {
            json_t *row = json_is_object(fields) ? json_copy(fields) : json_object();
            json_object_set_new(row, "name", json_string(name));
            json_array_append_new(rows, row);
        }
    }
    else if (json_is_array(map)) {
        json_array_foreach((json_t *) map, index, fields) {
            json_array_append_new(rows, json_is_object(fields) ? json_copy(fields)
                                                               : json_object());
        }
    }
    return rows;
}

static json_t *
s_pipeline_rows(const json_t *pipelines)
{
    json_t *rows = s_map_rows(pipelines);
    size_t index;
    json_t *fields;
    json_array_foreach(rows, index, fields)
        json_object_set_new(fields, "drops", s_drops_text(json_object_get(fields, "drops")));
    return rows;
}

//  Prints one line of a table from its cells, two spaces between columns.
static void
s_print_row(char **cells, const s_column_t *columns, const size_t *widths, size_t column_count)
{
    fputs("  ", stdout);
    for (size_t column = 0; column < column_count; column++) {
        bool last = column + 1 == column_count;
        const char *gap = last ? "\n" : "  ";
        if (columns[column].number)
            printf("%*s%s", (int) widths[column], cells[column], gap);
        else if (last)
            printf("%s%s", cells[column], gap);     //  no trailing blanks
        else
            printf("%-*s%s", (int) widths[column], cells[column], gap);
    }
}

//  Prints a titled table with one row per object of the JSON array rows.
static void
s_print_table(const char *title, const json_t *rows, const s_column_t *columns,
              size_t column_count)
{
    size_t row_count = json_is_array(rows) ? json_array_size(rows) : 0;
    char **cells = zm_alloc((row_count + 1) * column_count * sizeof *cells);
    size_t widths[S_COLUMNS_MAX] = {0};
    for (size_t row = 0; row <= row_count; row++) {
        const json_t *object = row ? json_array_get(rows, row - 1) : NULL;
        for (size_t column = 0; column < column_count; column++) {
            char **cell = &cells[row * column_count + column];
            *cell = row ? s_cell(json_object_get(object, columns[column].key))
                        : zm_strdup(columns[column].title);
            size_t width = strlen(*cell);
            widths[column] = width > widths[column] ? width : widths[column];
        }
    }
    printf("%s\n", title);
    for (size_t row = 0; row <= row_count; row++)
        s_print_row(&cells[row * column_count], columns, widths, column_count);
    if (row_count == 0)
        puts("  (none)");
    for (size_t index = 0; index < (row_count + 1) * column_count; index++)
        free(cells[index]);
    free(cells);
}

//  Prints every counter, in the broker's order, names aligned.
static void
s_print_counters(const json_t *counters)
{
    puts("COUNTERS");
    int width = 0;
    const char *name;
    json_t *value;
    json_object_foreach((json_t *) counters, name, value) {
        int length = (int) strlen(name);
        width = length > width ? length : width;
    }
    json_object_foreach((json_t *) counters, name, value) {
        char *text = s_cell(value);
        printf("  %-*s  %s\n", width, name, text);
        free(text);
    }
    if (json_object_size(counters) == 0)
        puts("  (none)");
}

//  Formats milliseconds as "3d 04h 05m 06s", shortest first unit that is not zero.
static void
s_format_uptime(const json_t *value, char *buffer, size_t size)
{
    if (!json_is_integer(value) || json_integer_value(value) < 0) {
        snprintf(buffer, size, "-");
        return;
    }
    long long seconds = (long long) (json_integer_value(value) / 1000);
    long long days = seconds / 86400;
    int hours = (int) (seconds / 3600 % 24);
    int minutes = (int) (seconds / 60 % 60);
    int rest = (int) (seconds % 60);
    if (days > 0)
        snprintf(buffer, size, "%lldd %02dh %02dm %02ds", days, hours, minutes, rest);
    else if (hours > 0)
        snprintf(buffer, size, "%dh %02dm %02ds", hours, minutes, rest);
    else if (minutes > 0)
        snprintf(buffer, size, "%dm %02ds", minutes, rest);
    else
        snprintf(buffer, size, "%ds", rest);
}

//  Prints one table per replicated service: a title line with its replication factor, write
//  quorum, epoch, last sequence number given and last answered, then a row per replica.
//  Nothing at all when the broker has no replicated service (or predates them).
static void
s_print_replicated(const json_t *replicated)
{
    size_t index;
    json_t *set;
    json_array_foreach((json_t *) replicated, index, set) {
        static const char *const keys[] = {"service", "replicas", "quorum", "epoch", "seq",
                                           "committed"};
        char *cells[6];
        for (size_t key = 0; key < 6; key++)
            cells[key] = s_cell(json_object_get(set, keys[key]));
        char *title = NULL;
        if (asprintf(&title, "REPLICATED %s: replicas %s, quorum %s, epoch %s, seq %s, "
                     "committed %s", cells[0], cells[1], cells[2], cells[3], cells[4],
                     cells[5]) < 0)
            abort();            //  out of memory aborts, as zm_alloc does
        for (size_t key = 0; key < 6; key++)
            free(cells[key]);
        s_print_table(title, json_object_get(set, "members"), s_member_columns,
                      sizeof s_member_columns / sizeof s_member_columns[0]);
        free(title);
        putchar('\n');
    }
}

//  Prints the status reply as tables. Returns the exit code.
static int
s_print_status(const zm_cli_t *cli, const zmesh_msg_t *reply)
{
    char *text = NULL;
    char error[ZM_JSON_ERROR_MAX] = "";
    if (zm_msgpack_to_json(zmesh_msg_data(reply), zmesh_msg_size(reply), &text, error,
                           sizeof error) != ZMESH_OK) {
        fprintf(stderr, "zmesh: status: the reply has no JSON form: %s\n", error);
        return ZM_CLI_EXIT_FAILED;
    }
    json_error_t json_error;
    json_t *status = json_loads(text, 0, &json_error);
    free(text);
    if (!json_is_object(status)) {
        fprintf(stderr, "zmesh: status: the reply is not a map\n");
        json_decref(status);
        return ZM_CLI_EXIT_FAILED;
    }
    char *version = s_cell(json_object_get(status, "version"));
    char uptime[64];
    s_format_uptime(json_object_get(status, "uptime_ms"), uptime, sizeof uptime);
    const json_t *security = json_object_get(status, "security");
    bool curve = json_is_true(json_object_get(security, "curve"));
    printf("zmesh broker at %s: version %s, uptime %s, curve %s\n\n", cli->broker, version,
           uptime, curve ? "on" : "off");
    free(version);
    s_print_table("SERVICES", json_object_get(status, "services"), s_service_columns,
                  sizeof s_service_columns / sizeof s_service_columns[0]);
    putchar('\n');
    json_t *pipelines = s_pipeline_rows(json_object_get(status, "pipelines"));
    s_print_table("PIPELINES", pipelines, s_pipeline_columns,
                  sizeof s_pipeline_columns / sizeof s_pipeline_columns[0]);
    json_decref(pipelines);
    putchar('\n');
    s_print_table("WORKERS", json_object_get(status, "workers"), s_worker_columns,
                  sizeof s_worker_columns / sizeof s_worker_columns[0]);
    putchar('\n');
    s_print_replicated(json_object_get(status, "replicated"));
    if (curve) {
        json_t *keys = s_map_rows(json_object_get(security, "key_stats"));
        s_print_table("KEYS", keys, s_key_columns, sizeof s_key_columns / sizeof s_key_columns[0]);
        json_decref(keys);
        putchar('\n');
    }
    s_print_counters(json_object_get(status, "counters"));
    json_decref(status);
    if (fflush(stdout) == EOF || ferror(stdout)) {
        fprintf(stderr, "zmesh: status: cannot write to stdout\n");
        return ZM_CLI_EXIT_FAILED;
    }
    return ZM_CLI_EXIT_OK;
}

int
zm_cli_status(const zm_cli_t *cli)
{
    int exit_code = ZM_CLI_EXIT_OK;
    zmesh_client_t *client = zm_cli_connect(cli, "status", &exit_code);
    if (!client)
        return exit_code;
    static const unsigned char nil = 0xc0;  //  MessagePack nil: the status call takes no request
    zmesh_msg_t *reply = NULL;
    int rc = zmesh_client_call(client, "zmesh.status", &nil, 1, cli->timeout_ms, &reply);
    if (rc != ZMESH_OK) {
        char detail[512];
        zm_cli_detail(cli, client, rc, detail, sizeof detail);
        exit_code = zm_cli_fail("status", rc, detail);
    }
    else if (cli->json)
        exit_code = zm_cli_print_reply("status", reply);
    else
        exit_code = s_print_status(cli, reply);
    zmesh_msg_destroy(&reply);
    zmesh_client_destroy(&client);
    return exit_code;
}
