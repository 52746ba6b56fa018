/* The server's life: listen, load, serve, stop (see server.h). */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server_internal.h"

/* How long a stop waits for the responses in flight to be sent. */
#define STOP_DRAIN_SECONDS 5

/* Random bits for ids and seeds: /dev/urandom, else the clock and pid. */
static uint64_t random_base(void)
{
    uint64_t value = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, &value, sizeof value) != (ssize_t)sizeof value)
            value = 0;
        close(fd);
    }
    if (value == 0) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        value = ((uint64_t)now.tv_sec << 32) ^ (uint64_t)now.tv_nsec ^ ((uint64_t)getpid() << 16);
    }
    return value;
}

/* The chat template: --chat-template's file (with the model's BOS and EOS
 * texts) or the model's own; a model without one gets the plain fallback,
 * said once. */
static bool load_chat_template(server_state *server)
{
    const serve_config *config = server->config;
    strata_error err = {0};
    strata_chat_template *from_model = NULL;
    if (strata_chat_template_from_gguf(config->model.path, &from_model, &err) != STRATA_OK) {
        fprintf(stderr, "strata serve: the chat template: %s\n", err.message);
        return false;
    }
    if (!config->chat_template_path) {
        server->chat_template = from_model;
        if (strata_chat_template_is_fallback(from_model))
            fprintf(stderr, "strata serve: %s has no chat template: chat messages reach the model as plain "
                            "\"role: content\" blocks (see --chat-template)\n",
                    config->model.path);
        return true;
    }
    bool ok = strata_chat_template_load_file(config->chat_template_path, &server->chat_template, &err) == STRATA_OK &&
              strata_chat_template_set_tokens(server->chat_template, strata_chat_template_bos_token(from_model),
                                              strata_chat_template_eos_token(from_model), &err) == STRATA_OK;
    if (!ok)
        fprintf(stderr, "strata serve: --chat-template %s: %s\n", config->chat_template_path, err.message);
    strata_chat_template_free(from_model);
    return ok;
}

/* Loads the model and starts the sequences. */
static bool load(server_state *server)
{
    const serve_config *config = server->config;
    strata_error err = {0};
    if (!load_chat_template(server))
        return false;
    if (strata_model_load(&config->model, &server->model, &err) != STRATA_OK) {
        fprintf(stderr, "strata serve: loading the model: %s\n", err.message);
        return false;
    }
    const strata_plan *plan = strata_model_plan(server->model);
    if (plan->note[0])
        fprintf(stderr, "strata serve: %s\n", plan->note);
    scheduler_params params = {.n_sequences = config->n_parallel, .max_queue = config->max_queue,
                               .kv_dtype = config->kv_dtype};
    if (scheduler_create(server->model, &params, &server->metrics, &server->sched, &err) != STRATA_OK) {
        fprintf(stderr, "strata serve: creating the sequences: %s\n", err.message);
        return false;
    }
    if (!strata_model_tokenizer(server->model))
        fprintf(stderr, "strata serve: %s has no tokenizer: prompts must be token ids, replies are ids\n",
                config->model.path);
    return true;
}

int serve_run(const serve_config *config)
{
    server_state server;
    memset(&server, 0, sizeof server);
    server.config = config;
    server.created = (int64_t)time(NULL);
    server.id_base = random_base();
    atomic_init(&server.ready, false);
    atomic_init(&server.id_counter, 0);
    int exit_status = 1;
    if (!metrics_init(&server.metrics)) {
        fprintf(stderr, "strata serve: cannot create a mutex\n");
        return 1;
    }

    /* every thread started from here on inherits the mask: only sigwait
     * below sees SIGINT and SIGTERM; a client gone mid-write is an error
     * return, not a signal */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    int port = 0;
    if (!http_start(&server, &port))
        goto done;
    fprintf(stderr, "strata serve: listening on http://%s%s%s:%d/ (loading %s)\n", strchr(config->host, ':') ? "[" : "",
            config->host, strchr(config->host, ':') ? "]" : "", port, config->model.path);
    if (!load(&server))
        goto done;
    atomic_store(&server.ready, true);
    fprintf(stderr, "strata serve: ready: model '%s', %d sequences of %lld positions, queue %d%s\n",
            config->model_name, config->n_parallel, (long long)scheduler_context_size(server.sched),
            config->max_queue, config->api_key && config->api_key[0] ? ", API key required" : "");

    int signal_number = 0;
    sigwait(&stop_signals, &signal_number);
    fprintf(stderr, "strata serve: %s: finishing the current step and stopping\n",
            signal_number == SIGINT ? "SIGINT" : "SIGTERM");
    http_quiesce(&server);
    atomic_store(&server.ready, false);
    scheduler_stop(server.sched);
    /* the stopped scheduler ended every stream with an error event: let the
     * connections send it and the stream's end before they are closed */
    if (!http_drain(&server, STOP_DRAIN_SECONDS))
        fprintf(stderr, "strata serve: some responses were still being sent after %d s; closing them\n",
                STOP_DRAIN_SECONDS);
    exit_status = 0;
done:
    if (server.sched)
        scheduler_stop(server.sched);
    http_stop(&server);
    scheduler_free(server.sched);
    strata_model_free(server.model);
    strata_chat_template_free(server.chat_template);
    metrics_destroy(&server.metrics);
    if (exit_status == 0)
        fprintf(stderr, "strata serve: stopped\n");
    return exit_status;
}
