/* strata serve: an OpenAI-compatible HTTP server over libstrata.
 *
 * The server sits above runtime/ (it uses only the public API in
 * runtime/strata.h and the chat templates of runtime/chat_template.h) and
 * below tools/, whose cmd_serve.c turns flags into a
 * serve_config. libmicrohttpd speaks HTTP, jansson reads and writes JSON. */
#ifndef STRATA_SERVER_H
#define STRATA_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "strata.h"

typedef struct serve_config {
    const char *host;          /* address to bind: "127.0.0.1", "::1", "0.0.0.0", a name */
    int port;                  /* 0: any free port (printed) */
    const char *api_key;       /* NULL or "": no authentication */
    int n_parallel;            /* sequences served at once, >= 1 */
    int max_queue;             /* requests waiting beyond them, >= 0 */
    uint64_t max_body;         /* bytes of a request body; larger is a 413 */
    const char *model_name;    /* the id /v1/models lists and responses carry */
    const char *chat_template_path; /* a Jinja file replacing the model's template; NULL: the model's */
    strata_model_params model; /* path, devices and placement, as `strata run` */
    strata_dtype kv_dtype;
    strata_sampler_params sampling; /* defaults for the fields a request leaves out */
    bool seed_given;           /* sampling.seed applies to requests without a seed */
    bool verbose;              /* one line per request on stderr */
} serve_config;

/* Starts listening (health answers 503 while the model loads), loads the
 * model, serves until SIGINT or SIGTERM, then finishes the running step,
 * ends every request and returns. Blocks SIGINT, SIGTERM and ignores
 * SIGPIPE in the calling process. Messages go to stderr, prefixed with
 * "strata serve: ". Returns the exit status: 0 after a clean stop, 1 when
 * the server could not start (address in use, model not loadable, the
 * sequences not fitting the devices). */
int serve_run(const serve_config *config);

#endif
