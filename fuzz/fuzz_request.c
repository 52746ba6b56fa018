/* libFuzzer target for the server's request parsing: the first byte picks
 * the endpoint (even: /v1/completions, odd: /v1/chat/completions), the rest
 * is the JSON body given to api_request_parse. Every input must end in a
 * request that keeps the parser's promises or in an error with a status and
 * a message; ASan and UBSan watch the rest. The reply builders then render
 * what was parsed, as the server would. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "request.h"
#include "response.h"

static void require(int condition)
{
    if (!condition)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    api_kind kind = data[0] % 2 ? API_CHAT_COMPLETIONS : API_COMPLETIONS;
    strata_sampler_params defaults = strata_sampler_default_params();
    api_request request;
    api_error err;
    memset(&err, 0, sizeof err);
    if (!api_request_parse(kind, (const char *)data + 1, size - 1, &defaults, &request, &err)) {
        require(err.http_status >= 400 && err.http_status < 600 && err.message[0] != '\0');
        require(request.prompt_text == NULL && request.messages == NULL && request.n_stop == 0);
        char *reply = api_reply_error(&err);
        require(reply != NULL);
        free(reply);
        return 0;
    }
    if (kind == API_COMPLETIONS)
        require((request.prompt_text != NULL) != (request.prompt_tokens != NULL));
    else
        require(request.n_messages >= 1 && request.n_messages <= API_MAX_MESSAGES);
    require(request.n_stop <= API_MAX_STOP);
    for (size_t i = 0; i < request.n_stop; i++)
        require(request.stop[i][0] != '\0' && strlen(request.stop[i]) <= API_MAX_STOP_BYTES);
    require(request.max_tokens == -1 || request.max_tokens >= 1);
    require(request.sampling.temperature >= 0 && request.sampling.top_p >= 0 && request.sampling.top_p <= 1);
    require(!request.include_usage || request.stream);
    /* render the texts the request carries as replies would carry text */
    api_reply_head head = {.kind = kind, .id = "cmpl-fuzz", .created = 0, .model = "fuzz"};
    api_usage usage = {(int64_t)request.n_prompt_tokens, 1};
    const char *text = request.prompt_text ? request.prompt_text
                       : request.n_messages ? request.messages[0].content
                                            : "";
    char *reply = api_reply_full(&head, text, strlen(text), API_FINISH_STOP, &usage);
    require(reply != NULL);
    free(reply);
    reply = api_reply_chunk(&head, text, strlen(text), true, -1, request.include_usage);
    require(reply != NULL);
    free(reply);
    api_request_free(&request);
    return 0;
}
