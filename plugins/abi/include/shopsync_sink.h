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
 * configured timeout and keeps the daemon running. A plugin that retries inside a call
 * should finish within that timeout (30 s unless configured).
 *
 * `create` should not need the target to be up (connect lazily, on the first `deliver`):
 * if it fails, the host tries again with backoff, but a plugin that connects lazily reports
 * the outage through `deliver`'s RETRY like any other.
 *
 * Config: the host replaces every top-level key `<key>_env` / `<key>_file` of the config
 * by `<key>` holding the environment variable's value / the file's content (one trailing
 * newline dropped) before `create`, and scrubs those values from every message the plugin
 * writes. A plugin never sees `password_env`, it sees `password`.
 */
#ifndef SHOPSYNC_SINK_H
#define SHOPSYNC_SINK_H

#include <stddef.h>
#include <stdint.h>

#define SHOPSYNC_SINK_ABI_VERSION 1u

/* Return codes. */
#define SHOPSYNC_SINK_OK 0
/* A transient failure (network, a lost or killed connection, a deadlock, a server shutting
 * down, a full disk): the host retries the same events later, with backoff. A plugin should
 * drop whatever connection failed so that its next call starts on a fresh one. */
#define SHOPSYNC_SINK_RETRY 1
/* Some event of the batch is unacceptable (a value the target will never take, an HTTP
 * 4xx): the host splits the batch in halves until the refused events are alone, delivers
 * the rest, and moves each refused event to the sink's dead-letter queue after the
 * configured attempts. Never return it for a failure that waiting could cure: those events
 * would be dead-lettered. */
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
