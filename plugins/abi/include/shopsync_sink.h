/*
 * shopsync sink plugin ABI, version 1.
 *
 * A sink plugin is a shared library exporting one symbol:
 *
 *     const shopsync_sink_vtable *shopsync_sink_entry(void);
 *
 * It returns a pointer to a table that lives as long as the library (a static). The host
 * checks `abi_version` first and refuses a library whose version differs from its own, then
 * checks that every function pointer is set. The table only ever grows by appending fields;
 * a field is never removed or reordered.
 *
 * Memory never crosses allocators: the host owns every buffer it passes in (config, events,
 * the error message buffer) and the plugin owns its instance. Errors come back as a return
 * code plus a message the plugin writes into the host's buffer (truncated to `cap`, not
 * NUL-terminated; `len` says how much was written).
 *
 * Threads: the host calls one instance from one thread at a time, but not always the same
 * thread. A call may take as long as it needs; the host reports a sink stuck after its
 * configured timeout and keeps the daemon running.
 */
#ifndef SHOPSYNC_SINK_H
#define SHOPSYNC_SINK_H

#include <stddef.h>
#include <stdint.h>

#define SHOPSYNC_SINK_ABI_VERSION 1u

/* Return codes. */
#define SHOPSYNC_SINK_OK 0
/* A transient failure (network, a busy server): the host retries the same batch later. */
#define SHOPSYNC_SINK_RETRY 1
/* The batch itself is unacceptable (e.g. an HTTP 4xx): after the configured attempts the
 * host moves it to the sink's dead-letter queue and goes on. */
#define SHOPSYNC_SINK_REJECT 2

typedef struct shopsync_sink_message {
    char *buf;  /* host-owned */
    size_t cap; /* bytes available in buf */
    size_t len; /* bytes the plugin wrote */
} shopsync_sink_message;

typedef struct shopsync_sink_vtable {
    /* Must be SHOPSYNC_SINK_ABI_VERSION. */
    uint32_t abi_version;
    /* NUL-terminated, static. */
    const char *name;
    /* Creates an instance from the sink's config (JSON, UTF-8, not NUL-terminated).
     * Returns NULL on error, with a message. */
    void *(*create)(const uint8_t *config_json, size_t config_len, shopsync_sink_message *err);
    /* Delivers a batch: a JSON array of change events (UTF-8, not NUL-terminated). Every
     * event carries a stable "id"; a batch may be delivered more than once. */
    int32_t (*deliver)(void *instance, const uint8_t *events_json, size_t events_len, shopsync_sink_message *err);
    /* Makes everything delivered so far durable. */
    int32_t (*flush)(void *instance, shopsync_sink_message *err);
    /* Frees the instance. */
    void (*destroy)(void *instance);
} shopsync_sink_vtable;

const shopsync_sink_vtable *shopsync_sink_entry(void);

#endif
