/* What the server's files share: the running server's state, the HTTP
 * helpers of http.c and the endpoint handlers of routes.c. */
#ifndef STRATA_SERVER_INTERNAL_H
#define STRATA_SERVER_INTERNAL_H

#include <microhttpd.h>
#include <stdatomic.h>

#include "chat_template.h"
#include "metrics.h"
#include "request.h"
#include "scheduler.h"
#include "server.h"

typedef struct server_state {
    const serve_config *config;
    struct MHD_Daemon *daemon;
    server_metrics metrics;
    atomic_bool ready;        /* model loaded and the scheduler running */
    strata_model *model;      /* set before ready */
    scheduler *sched;         /* set before ready */
    strata_chat_template *chat_template; /* the model's, --chat-template's, or the plain fallback */
    int64_t created;          /* Unix seconds the server started: the model's "created" */
    uint64_t id_base;         /* random bits for response ids and seeds */
    atomic_uint_fast64_t id_counter;
    atomic_int open_requests; /* requests whose response is not yet all sent */
} server_state;

/* --- http.c ------------------------------------------------------------------------------------ */

/* Starts the daemon on config->host and config->port; *bound_port gets the
 * port (useful with port 0). Returns false after printing why. */
bool http_start(server_state *server, int *bound_port);
/* Stops accepting connections (requests already in keep going). */
void http_quiesce(server_state *server);
/* Waits until every request's response has been sent (a stream ended by the
 * stopping scheduler sends its last event and its end), at most
 * timeout_seconds; returns whether none is left. */
bool http_drain(server_state *server, double timeout_seconds);
/* Closes every connection and joins their threads. */
void http_stop(server_state *server);

/* Queues a response of status with body (copied) and content type. */
enum MHD_Result http_respond(struct MHD_Connection *connection, int status, const char *content_type,
                             const char *body, size_t len);
/* Queues err as OpenAI's error JSON with err->http_status. */
enum MHD_Result http_respond_error(struct MHD_Connection *connection, const api_error *err);
/* Whether the client closed its end of the connection (fd), seen without
 * reading anything. */
bool http_client_gone(int fd);

/* --- routes.c ---------------------------------------------------------------------------------- */

/* The handlers of each endpoint. body is the request body (len bytes) for
 * POST. *status receives the HTTP status answered, for the metrics. */
enum MHD_Result route_health(server_state *server, struct MHD_Connection *connection, int *status);
enum MHD_Result route_models(server_state *server, struct MHD_Connection *connection, int *status);
enum MHD_Result route_metrics(server_state *server, struct MHD_Connection *connection, int *status);
enum MHD_Result route_completion(server_state *server, struct MHD_Connection *connection, api_kind kind,
                                 const char *body, size_t len, int *status);

#endif
