/*
 * A sink plugin written in C, to prove the ABI is language-neutral: it appends every batch
 * (a JSON array of events) as one line to the file named by the config's "path".
 * The config parser is deliberately tiny: it finds "path":"..." in the JSON.
 * Build: cc -shared -fPIC -I ../abi/include -o libshopsync_sink_c_example.so sink.c
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "shopsync_sink.h"

#ifndef ABI_VERSION_OVERRIDE
#define ABI_VERSION_OVERRIDE SHOPSYNC_SINK_ABI_VERSION
#endif

struct csink {
    FILE *f;
};

static void say(shopsync_sink_message *err, const char *msg) {
    if (!err || !err->buf) return;
    size_t n = strlen(msg);
    if (n > err->cap) n = err->cap;
    memcpy(err->buf, msg, n);
    err->len = n;
}

static void *c_create(const uint8_t *config, size_t len, shopsync_sink_message *err) {
    char *cfg = malloc(len + 1);
    if (!cfg) { say(err, "out of memory"); return NULL; }
    memcpy(cfg, config, len);
    cfg[len] = 0;
    const char *key = strstr(cfg, "\"path\"");
    const char *start = key ? strchr(key + 6, '"') : NULL;
    const char *end = start ? strchr(start + 1, '"') : NULL;
    if (!end) { free(cfg); say(err, "config needs \"path\""); return NULL; }
    char path[4096];
    size_t n = (size_t)(end - start - 1);
    if (n >= sizeof path) { free(cfg); say(err, "path too long"); return NULL; }
    memcpy(path, start + 1, n);
    path[n] = 0;
    free(cfg);
    struct csink *s = calloc(1, sizeof *s);
    if (!s) { say(err, "out of memory"); return NULL; }
    s->f = fopen(path, "a");
    if (!s->f) { free(s); say(err, "cannot open path"); return NULL; }
    return s;
}

static int32_t c_deliver(void *inst, const uint8_t *events, size_t len, shopsync_sink_message *err) {
    struct csink *s = inst;
    if (fwrite(events, 1, len, s->f) != len || fputc('\n', s->f) == EOF) {
        say(err, "write failed");
        return SHOPSYNC_SINK_RETRY;
    }
    return fflush(s->f) == 0 ? SHOPSYNC_SINK_OK : SHOPSYNC_SINK_RETRY;
}

static int32_t c_flush(void *inst, shopsync_sink_message *err) {
    struct csink *s = inst;
    (void)err;
    return fflush(s->f) == 0 ? SHOPSYNC_SINK_OK : SHOPSYNC_SINK_RETRY;
}

static void c_destroy(void *inst) {
    struct csink *s = inst;
    if (s) { fclose(s->f); free(s); }
}

static const shopsync_sink_vtable TABLE = {
    ABI_VERSION_OVERRIDE, "c-example", c_create, c_deliver, c_flush, c_destroy,
};

const shopsync_sink_vtable *shopsync_sink_entry(void) { return &TABLE; }
