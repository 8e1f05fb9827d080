/* libFuzzer target for the HTTP/1.1 engine: the input is fed in pieces whose
 * sizes come from the input's first byte, and every event is consumed the
 * way the connection layer does (next request after END). Build with
 * -DMPMLIB_BUILD_FUZZERS=ON and clang; run build/tests/fuzz_h1 -max_total_time=60. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/http1.h"

static void check_head(const mpm__h1_head_t *h)
{
    /* Touch every string: the sanitizers catch a bad pointer. */
    size_t n = strlen(h->method) + strlen(h->target) + strlen(h->path) + strlen(h->query);
    for (unsigned i = 0; i < h->nheaders; i++)
        n += strlen(h->headers[i].name) + strlen(h->headers[i].value);
    (void)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t piece = (size_t)(data[0] % 17) + 1;
    data++;
    size--;
    mpm__h1_limits_t lim = {.request_line = 256, .field_size = 256, .fields = 16, .body = 4096};
    mpm__h1_t h;
    if (mpm__h1_init(&h, &lim) != 0)
        return 0;
    size_t off = 0;
    for (int rounds = 0; rounds < 100000; rounds++) {
        size_t len = size - off < piece ? size - off : piece;
        mpm__h1_event_t ev;
        size_t used = mpm__h1_feed(&h, (const char *)data + off, len, &ev);
        off += used;
        if (ev.type == MPM__H1_ERROR)
            break;
        if (ev.type == MPM__H1_HEAD)
            check_head(mpm__h1_head(&h));
        if (ev.type == MPM__H1_END)
            mpm__h1_next(&h);
        if (ev.type == MPM__H1_NEED_MORE && off >= size)
            break;
    }
    mpm__h1_eof(&h);
    mpm__h1_free(&h);
    return 0;
}
