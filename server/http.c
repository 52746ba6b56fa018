/* The HTTP side of the server: libmicrohttpd's daemon, a thread per
 * connection, the route table, authentication and request bodies.
 *
 * A thread per connection lets a handler block while its request waits for
 * a sequence or generates (the scheduler does the work; the thread only
 * waits and writes), and a streamed response's reader block until the next
 * token. Connections are capped (sequences + queue + some room for health
 * checks and scrapes), and an idle connection is dropped after a timeout, so
 * slow clients cannot take every thread. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server_internal.h"
#include "text_buffer.h"

enum {
    HTTP_IDLE_TIMEOUT_SECONDS = 60,
    HTTP_SPARE_CONNECTIONS = 64, /* beyond sequences + queue: health checks, scrapes, refusals */
};

typedef enum route_id { ROUTE_HEALTH, ROUTE_MODELS, ROUTE_COMPLETIONS, ROUTE_CHAT, ROUTE_METRICS } route_id;

typedef struct route {
    const char *path;
    const char *method;
    route_id id;
    metrics_endpoint endpoint;
    bool needs_key;           /* with --api-key */
} route;

static const route routes[] = {
    {"/health", "GET", ROUTE_HEALTH, METRICS_HEALTH, false},
    {"/v1/models", "GET", ROUTE_MODELS, METRICS_MODELS, true},
    {"/v1/completions", "POST", ROUTE_COMPLETIONS, METRICS_COMPLETIONS, true},
    {"/v1/chat/completions", "POST", ROUTE_CHAT, METRICS_CHAT_COMPLETIONS, true},
    {"/metrics", "GET", ROUTE_METRICS, METRICS_METRICS, true},
};

/* One request on a connection, from its first call to its completion. */
typedef struct request_state {
    const route *route;       /* NULL: unknown path (answered at once) */
    bool answered;            /* a response is queued */
    bool too_big;             /* the body passed --max-body: the rest is dropped */
    text_buffer body;
} request_state;

/* --- responses ------------------------------------------------------------------------------- */

enum MHD_Result http_respond(struct MHD_Connection *connection, int status, const char *content_type,
                             const char *body, size_t len)
{
    struct MHD_Response *response = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!response)
        return MHD_NO;
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(response, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (status == 413) /* the rest of an oversized body is not read: do not wait for another request */
        MHD_add_response_header(response, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result result = MHD_queue_response(connection, (unsigned int)status, response);
    MHD_destroy_response(response);
    return result;
}

enum MHD_Result http_respond_error(struct MHD_Connection *connection, const api_error *err)
{
    char *body = api_reply_error(err);
    static const char fallback[] = "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\"}}";
    enum MHD_Result result = body ? http_respond(connection, err->http_status, "application/json", body, strlen(body))
                                  : http_respond(connection, 500, "application/json", fallback, sizeof fallback - 1);
    free(body);
    return result;
}

bool http_client_gone(int fd)
{
    if (fd < 0)
        return false;
    char byte;
    ssize_t n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0)
        return false; /* a pipelined request: still there */
    if (n == 0)
        return true;
    return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

/* --- authentication ---------------------------------------------------------------------------- */

/* "Bearer KEY" against the key, in time that depends on the lengths only,
 * not on where the first difference is. */
static bool key_matches(const char *header, const char *key)
{
    static const char prefix[] = "Bearer ";
    if (!header || strncmp(header, prefix, sizeof prefix - 1) != 0)
        return false;
    const unsigned char *given = (const unsigned char *)header + sizeof prefix - 1;
    const unsigned char *wanted = (const unsigned char *)key;
    size_t given_len = strlen((const char *)given), wanted_len = strlen(key);
    unsigned difference = given_len != wanted_len;
    for (size_t i = 0; i < wanted_len; i++)
        difference |= (unsigned)(wanted[i] ^ (i < given_len ? given[i] : 0));
    return difference == 0;
}

/* --- the access handler ------------------------------------------------------------------------ */

static const route *find_route(const char *url, const char *method, bool *path_known)
{
    *path_known = false;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (strcmp(url, routes[i].path) != 0)
            continue;
        *path_known = true;
        if (strcmp(method, routes[i].method) == 0)
            return &routes[i];
    }
    return NULL;
}

/* Answers at once with an error (before or instead of reading the body). */
static enum MHD_Result refuse(server_state *server, struct MHD_Connection *connection, request_state *state,
                              metrics_endpoint endpoint, int status, const char *param, const char *message)
{
    api_error err;
    api_fail(&err, status, param, "%s", message);
    state->answered = true;
    metrics_count_request(&server->metrics, endpoint, status);
    return http_respond_error(connection, &err);
}

/* The first call of a request: route, key, declared body size. */
static enum MHD_Result begin_request(server_state *server, struct MHD_Connection *connection, const char *url,
                                     const char *method, request_state *state)
{
    bool path_known;
    state->route = find_route(url, method, &path_known);
    if (!state->route) {
        char message[160];
        snprintf(message, sizeof message, path_known ? "%.16s is not allowed on %.80s" : "no route %.16s %.80s",
                 method, url);
        return refuse(server, connection, state, METRICS_OTHER, path_known ? 405 : 404, NULL, message);
    }
    const char *key = server->config->api_key;
    if (state->route->needs_key && key && key[0] &&
        !key_matches(MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION), key))
        return refuse(server, connection, state, state->route->endpoint, 401, NULL,
                      "a valid API key is needed: 'Authorization: Bearer KEY'");
    const char *length = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (length) {
        char *end = NULL;
        errno = 0;
        unsigned long long declared = strtoull(length, &end, 10);
        if ((errno == ERANGE || declared > server->config->max_body) && end != length) {
            char message[128];
            snprintf(message, sizeof message, "the body has %s bytes; at most %llu are accepted (--max-body)", length,
                     (unsigned long long)server->config->max_body);
            return refuse(server, connection, state, state->route->endpoint, 413, NULL, message);
        }
    }
    return MHD_YES;
}

static enum MHD_Result dispatch(server_state *server, struct MHD_Connection *connection, request_state *state)
{
    int status = 500;
    enum MHD_Result result = MHD_NO;
    const char *body = state->body.data ? state->body.data : "";
    switch (state->route->id) {
    case ROUTE_HEALTH: result = route_health(server, connection, &status); break;
    case ROUTE_MODELS: result = route_models(server, connection, &status); break;
    case ROUTE_METRICS: result = route_metrics(server, connection, &status); break;
    case ROUTE_COMPLETIONS:
        result = route_completion(server, connection, API_COMPLETIONS, body, state->body.len, &status);
        break;
    case ROUTE_CHAT:
        result = route_completion(server, connection, API_CHAT_COMPLETIONS, body, state->body.len, &status);
        break;
    }
    state->answered = true;
    metrics_count_request(&server->metrics, state->route->endpoint, status);
    if (server->config->verbose)
        fprintf(stderr, "strata serve: %s %s -> %d\n", state->route->method, state->route->path, status);
    return result;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *connection, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    server_state *server = cls;
    request_state *state = *con_cls;
    if (!state) {
        if (!(state = calloc(1, sizeof *state)))
            return MHD_NO;
        *con_cls = state;
        atomic_fetch_add(&server->open_requests, 1);
        return begin_request(server, connection, url, method, state);
    }
    if (state->answered) {
        *upload_data_size = 0; /* an early answer: the rest of the body is dropped */
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t size = *upload_data_size;
        *upload_data_size = 0;
        if (state->too_big)
            return MHD_YES;
        /* a body without a declared length (chunked) that passes the limit
         * is dropped as it comes: libmicrohttpd answers only once the body
         * has been read */
        if (size > server->config->max_body - state->body.len || !text_buffer_append(&state->body, upload_data, size)) {
            state->too_big = true;
            text_buffer_free(&state->body);
        }
        return MHD_YES;
    }
    if (state->too_big) {
        char message[128];
        snprintf(message, sizeof message, "the body is larger than the %llu bytes accepted (--max-body)",
                 (unsigned long long)server->config->max_body);
        return refuse(server, connection, state, state->route->endpoint, 413, NULL, message);
    }
    return dispatch(server, connection, state);
}

static void on_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
                         enum MHD_RequestTerminationCode code)
{
    server_state *server = cls;
    (void)connection;
    (void)code;
    request_state *state = *con_cls;
    if (!state)
        return;
    text_buffer_free(&state->body);
    free(state);
    *con_cls = NULL;
    atomic_fetch_sub(&server->open_requests, 1);
}

/* --- the daemon -------------------------------------------------------------------------------- */

bool http_start(server_state *server, int *bound_port)
{
    const serve_config *config = server->config;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *found = NULL;
    int rc = getaddrinfo(config->host, NULL, &hints, &found);
    if (rc != 0 || !found) {
        fprintf(stderr, "strata serve: --host %s: %s\n", config->host, rc ? gai_strerror(rc) : "no address");
        return false;
    }
    struct sockaddr_storage address;
    memset(&address, 0, sizeof address);
    memcpy(&address, found->ai_addr, found->ai_addrlen);
    bool ipv6 = found->ai_family == AF_INET6;
    freeaddrinfo(found);
    if (ipv6)
        ((struct sockaddr_in6 *)&address)->sin6_port = htons((uint16_t)config->port);
    else
        ((struct sockaddr_in *)&address)->sin_port = htons((uint16_t)config->port);

    unsigned int flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                         MHD_USE_ERROR_LOG | MHD_USE_ITC | (ipv6 ? MHD_USE_IPv6 : 0);
    unsigned int connection_limit = (unsigned int)(config->n_parallel + config->max_queue + HTTP_SPARE_CONNECTIONS);
    server->daemon = MHD_start_daemon(flags, (uint16_t)config->port, NULL, NULL, on_request, server,
                                      MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&address, MHD_OPTION_CONNECTION_LIMIT,
                                      connection_limit, MHD_OPTION_CONNECTION_TIMEOUT,
                                      (unsigned int)HTTP_IDLE_TIMEOUT_SECONDS, MHD_OPTION_NOTIFY_COMPLETED,
                                      on_completed, server, MHD_OPTION_END);
    if (!server->daemon) {
        fprintf(stderr, "strata serve: cannot listen on %s port %d (in use, or not an address of this machine)\n",
                config->host, config->port);
        return false;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(server->daemon, MHD_DAEMON_INFO_BIND_PORT);
    *bound_port = info ? (int)info->port : config->port;
    return true;
}

void http_quiesce(server_state *server)
{
    if (server->daemon) {
        MHD_socket listener = MHD_quiesce_daemon(server->daemon);
        if (listener != MHD_INVALID_SOCKET)
            close(listener);
    }
}

bool http_drain(server_state *server, double timeout_seconds)
{
    struct timespec pause = {.tv_sec = 0, .tv_nsec = 10 * 1000 * 1000};
    for (double waited = 0.0; atomic_load(&server->open_requests) > 0; waited += 0.01) {
        if (waited >= timeout_seconds)
            return false;
        nanosleep(&pause, NULL);
    }
    return true;
}

void http_stop(server_state *server)
{
    if (server->daemon)
        MHD_stop_daemon(server->daemon);
    server->daemon = NULL;
}
