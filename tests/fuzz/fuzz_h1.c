/* libFuzzer target for the HTTP/1.1 engine. The input (after its first
 * byte) is fed twice: whole, and in pieces whose size comes from the first
 * byte, consuming every event the way the connection layer does (next
 * request after END). Both runs must tell the same story -- the same heads,
 * body bytes, ends and error status -- or the target traps: how bytes are
 * split by the network must never change how a request is read. Build with
 * -DMPMLIB_BUILD_FUZZERS=ON and clang; run build-fuzz/tests/fuzz_h1
 * -max_total_time=600 (seed inputs: tests/fuzz/corpus). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/http1.h"

typedef struct story {
    uint64_t hash;
    int last_type;
} story_t;

static void mix(story_t *s, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        s->hash ^= b[i];
        s->hash *= 1099511628211ull; /* FNV-1a */
    }
}

static void mix_str(story_t *s, const char *str)
{
    mix(s, str, strlen(str) + 1); /* strlen also touches every byte */
}

static void mix_head(story_t *s, const mpm__h1_head_t *h)
{
    mix_str(s, h->method);
    mix_str(s, h->target);
    mix_str(s, h->path);
    mix_str(s, h->query);
    int nums[6] = {h->version,         h->is_head, h->client_keepalive,
                   h->expect_continue, h->chunked, (int)h->nheaders};
    mix(s, nums, sizeof(nums));
    mix(s, &h->content_length, sizeof(h->content_length));
    for (unsigned i = 0; i < h->nheaders; i++) {
        mix_str(s, h->headers[i].name);
        mix_str(s, h->headers[i].value);
    }
}

/* One event into the story; BODY spans are joined (their boundaries depend
 * on the split). Returns 0 when the connection is over. */
static int tell(story_t *s, mpm__h1_t *h, const mpm__h1_event_t *ev, const char *at, size_t used)
{
    if (ev->type != s->last_type || ev->type != MPM__H1_BODY)
        mix(s, &ev->type, sizeof(ev->type));
    s->last_type = ev->type;
    switch (ev->type) {
    case MPM__H1_HEAD:
        mix_head(s, mpm__h1_head(h));
        return 1;
    case MPM__H1_BODY:
        if (ev->len == 0 || ev->data < at || ev->data + ev->len > at + used)
            __builtin_trap(); /* body bytes are a non-empty span of what was consumed */
        mix(s, ev->data, ev->len);
        return 1;
    case MPM__H1_END:
        mpm__h1_next(h);
        return 1;
    case MPM__H1_ERROR:
        mix(s, &ev->status, sizeof(ev->status));
        return 0;
    default:
        return 1;
    }
}

static uint64_t run(const char *data, size_t size, size_t piece)
{
    mpm__h1_limits_t lim = {.request_line = 256, .field_size = 256, .fields = 16, .body = 4096};
    mpm__h1_t h;
    story_t s = {14695981039346656037ull, -1};
    if (mpm__h1_init(&h, &lim) != 0)
        __builtin_trap();
    size_t off = 0, avail = piece < size ? piece : size;
    for (int rounds = 0; rounds < 1000000; rounds++) {
        mpm__h1_event_t ev;
        size_t used = mpm__h1_feed(&h, data + off, avail - off, &ev);
        if (used > avail - off)
            __builtin_trap();
        if (ev.type == MPM__H1_NEED_MORE) {
            if (used != avail - off)
                __builtin_trap(); /* NEED_MORE consumes everything */
            off = avail;
            if (avail == size)
                break;
            avail = size - avail < piece ? size : avail + piece;
            continue;
        }
        if (!tell(&s, &h, &ev, data + off, used))
            break;
        off += used;
    }
    int eof = mpm__h1_eof(&h);
    mix(&s, &eof, sizeof(eof));
    mpm__h1_free(&h);
    return s.hash;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t piece = (size_t)(data[0] % 17) + 1;
    const char *in = (const char *)data + 1;
    size--;
    if (run(in, size, size ? size : 1) != run(in, size, piece))
        __builtin_trap(); /* the split changed the outcome */
    return 0;
}
