/* Configuration: directive defaults, set/get round trips, every kind of bad
 * value, ranges, Listen, cross-directive checks, errors and version. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/config.h"
#include "core/internal.h"

static int setup(void **state)
{
    mpm_config_t *cfg = NULL;
    if (mpm_config_new(&cfg) != 0)
        return -1;
    *state = cfg;
    return 0;
}

static int teardown(void **state)
{
    mpm_config_free(*state);
    return 0;
}

/* The current text of a directive (static buffer: one use per statement). */
static const char *get(const mpm_config_t *cfg, const char *key)
{
    static char buf[8192];
    int n = mpm_config_get(cfg, key, buf, sizeof buf);
    assert_true(n >= 0);
    assert_int_equal((size_t)n, strlen(buf));
    return buf;
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (!strstr(haystack, needle))
        fail_msg("'%s' does not contain '%s'", haystack, needle);
}

/* Sets key=value, expects MPM_ECONFIG, an errmsg containing `why`, and no
 * change at all to the settings. */
static void assert_rejected(mpm_config_t *cfg, const char *key, const char *value, const char *why)
{
    mpm__settings_t before = cfg->s;
    int rc = mpm_config_set(cfg, key, value);
    if (rc != MPM_ECONFIG)
        fail_msg("%s '%s': expected MPM_ECONFIG, got %d", key, value, rc);
    assert_contains(mpm_config_errmsg(cfg), why);
    assert_memory_equal(&before, &cfg->s, sizeof before);
}

static void assert_set(mpm_config_t *cfg, const char *key, const char *value)
{
    int rc = mpm_config_set(cfg, key, value);
    if (rc != 0)
        fail_msg("%s '%s': %d %s", key, value, rc, mpm_config_errmsg(cfg));
}

/* ------------------------------------------------------------------ */

static const struct {
    const char *key, *value;
} defaults[] = {
    {"Listen", ""},
    {"ListenBacklog", "511"},
    {"DeferAccept", "0"},
    {"OneProcess", "Off"},
    {"KeepAlive", "On"},
    {"KeepAliveTimeout", "5"},
    {"MaxKeepAliveRequests", "100"},
    {"Timeout", "60"},
    {"RequestReadTimeout", "header=20-40,MinRate=500 body=20,MinRate=500"},
    {"RequestBodyTimeout", "20,MinRate=500"},
    {"LimitRequestLine", "8190"},
    {"LimitRequestFieldSize", "8190"},
    {"LimitRequestFields", "100"},
    {"LimitRequestBody", "1073741824"},
    {"RequestBodyPrefetch", "65536"},
    {"StartServers", "0"},
    {"MinSpareServers", "5"},
    {"MaxSpareServers", "10"},
    {"ServerLimit", "0"},
    {"MaxRequestWorkers", "0"},
    {"MaxClients", "0"},
    {"MaxConnectionsPerChild", "0"},
    {"MaxRequestsPerChild", "0"},
    {"ThreadsPerChild", "25"},
    {"ThreadLimit", "64"},
    {"MinSpareThreads", "75"},
    {"MaxSpareThreads", "250"},
    {"AsyncRequestWorkerFactor", "2"},
    {"AsyncConnectionLimit", "0"},
    {"GracefulShutdownTimeout", "0"},
    {"DrainWindow", "1"},
    {"HandleSignals", "On"},
    {"LogLevel", "warn"},
    {"TLSListen", ""},
    {"TLSCertificate", ""},
    {"TLSProtocol", "TLSv1.2 TLSv1.3"},
    {"TLSCipherSuites", "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"},
    {"TLSPinning", "On"},
    {"TLSDeferAccept", "1"},
    {"TLSSessionTickets", "On"},
    {"TLSSessionTicketKeyRotation", "3600"},
};

static void test_defaults_as_text(void **state)
{
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
        const char *v = get(*state, defaults[i].key);
        if (strcmp(v, defaults[i].value) != 0)
            fail_msg("%s: default '%s', expected '%s'", defaults[i].key, v, defaults[i].value);
    }
    assert_string_equal(mpm_config_errmsg(*state), "");
}

static void test_defaults_in_struct(void **state)
{
    const mpm__settings_t *s = &((mpm_config_t *)*state)->s;
    assert_int_equal(s->listen_backlog, 511);
    assert_int_equal(s->keepalive, 1);
    assert_int_equal(s->one_process, 0);
    assert_int_equal(s->keepalive_timeout_ms, 5000);
    assert_int_equal(s->timeout_ms, 60000);
    assert_int_equal(s->header_timeout.timeout_ms, 20000);
    assert_int_equal(s->header_timeout.max_ms, 40000);
    assert_int_equal(s->header_timeout.min_rate, 500);
    assert_int_equal(s->body_timeout.timeout_ms, 20000);
    assert_int_equal(s->body_timeout.max_ms, 0);
    assert_int_equal(s->body_timeout.min_rate, 500);
    assert_int_equal(s->limit_request_line, 8190);
    assert_int_equal(s->limit_request_body, (uint64_t)1 << 30);
    assert_int_equal(s->request_body_prefetch, 65536);
    assert_int_equal(s->async_worker_factor_milli, 2000);
    assert_int_equal(s->async_connection_limit, 0);
    assert_int_equal(s->drain_window_ms, 1000);
    assert_int_equal(s->handle_signals, 1);
    assert_int_equal(s->log_level, MPM_LOG_WARN);
    assert_int_equal(s->nlisten, 0);
    for (int i = 0; i < MPM__MAX_LISTENERS; i++)
        assert_int_equal(s->listen[i].host_fd, -1);
}

static void test_round_trips(void **state)
{
    static const struct {
        const char *key, *in, *out;
    } cases[] = {
        {"ListenBacklog", "128", "128"},
        {"MPM", "event", "event"},
        {"OneProcess", "On", "On"},
        {"KeepAlive", "Off", "Off"},
        {"KeepAliveTimeout", "15", "15"},
        {"KeepAliveTimeout", "300ms", "300ms"},
        {"KeepAliveTimeout", "2000ms", "2"},
        {"KeepAliveTimeout", "7s", "7"},
        {"KeepAliveTimeout", " 9 ", "9"},
        {"MaxKeepAliveRequests", "0", "0"},
        {"Timeout", "1ms", "1ms"},
        {"LimitRequestLine", "65536", "65536"},
        {"LimitRequestFieldSize", "16K", "16384"},
        {"LimitRequestFields", "32767", "32767"},
        {"LimitRequestBody", "0", "0"},
        {"LimitRequestBody", "2M", "2097152"},
        {"LimitRequestBody", "4g", "4294967296"},
        {"StartServers", "3", "3"},
        {"MinSpareServers", "1", "1"},
        {"MaxSpareServers", "200000", "200000"},
        {"ServerLimit", "16", "16"},
        {"MaxRequestWorkers", "400", "400"},
        {"MaxClients", "150", "150"},
        {"MaxConnectionsPerChild", "10000", "10000"},
        {"MaxRequestsPerChild", "7", "7"},
        {"ThreadsPerChild", "8", "8"},
        {"ThreadLimit", "100000", "100000"},
        {"MinSpareThreads", "1", "1"},
        {"MaxSpareThreads", "2", "2"},
        {"AsyncRequestWorkerFactor", "4", "4"},
        {"AsyncRequestWorkerFactor", "1.5", "1.5"},
        {"AsyncRequestWorkerFactor", "1.50", "1.5"},
        {"AsyncRequestWorkerFactor", "2.000", "2"},
        {"AsyncRequestWorkerFactor", "0.001", "0.001"},
        {"AsyncRequestWorkerFactor", "1.05", "1.05"},
        {"AsyncRequestWorkerFactor", "1000", "1000"},
        {"AsyncConnectionLimit", "20000", "20000"},
        {"AsyncConnectionLimit", "0", "0"},
        {"RequestBodyPrefetch", "0", "0"},
        {"RequestBodyPrefetch", "8K", "8192"},
        {"RequestBodyPrefetch", "16M", "16777216"},
        {"GracefulShutdownTimeout", "30", "30"},
        {"DrainWindow", "0", "0"},
        {"DrainWindow", "250ms", "250ms"},
        {"HandleSignals", "Off", "Off"},
        {"LogLevel", "debug", "debug"},
        {"LogLevel", "error", "error"},
        {"RequestReadTimeout", "header=10 body=30", "header=10 body=30"},
        {"RequestBodyTimeout", "500ms", "500ms"},
        {"RequestBodyTimeout", "10-20,minrate=100", "10-20,MinRate=100"},
        {"RequestReadTimeout", "header=20-40,MinRate=500 body=20,MinRate=500",
         "header=20-40,MinRate=500 body=20,MinRate=500"},
        {"RequestReadTimeout", "header=0 body=0", "header=0 body=0"},
        {"RequestReadTimeout", "header=1-2,MinRate=100 body=1500ms,MinRate=1",
         "header=1-2,MinRate=100 body=1500ms,MinRate=1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_set(*state, cases[i].key, cases[i].in);
        const char *v = get(*state, cases[i].key);
        if (strcmp(v, cases[i].out) != 0)
            fail_msg("%s '%s' reads back '%s', expected '%s'", cases[i].key, cases[i].in, v,
                     cases[i].out);
    }
}

static void test_aliases_share_storage(void **state)
{
    mpm_config_t *cfg = *state;
    assert_set(cfg, "MaxClients", "42");
    assert_string_equal(get(cfg, "MaxRequestWorkers"), "42");
    assert_set(cfg, "MaxRequestsPerChild", "9");
    assert_string_equal(get(cfg, "MaxConnectionsPerChild"), "9");
    assert_int_equal(cfg->s.max_connections_per_child, 9);
}

static void test_case_insensitive(void **state)
{
    mpm_config_t *cfg = *state;
    assert_set(cfg, "keepalivetimeout", "12");
    assert_string_equal(get(cfg, "KEEPALIVETIMEOUT"), "12");
    assert_set(cfg, "KEEPALIVE", "oFF");
    assert_int_equal(cfg->s.keepalive, 0);
    assert_set(cfg, "keepalive", "ON");
    assert_int_equal(cfg->s.keepalive, 1);
    assert_set(cfg, "mpm", "Worker");
    assert_string_equal(cfg->s.mpm, "worker");
    assert_set(cfg, "loglevel", "DEBUG");
    assert_int_equal(cfg->s.log_level, MPM_LOG_DEBUG);
    assert_set(cfg, "requestreadtimeout", "HEADER=3 Body=4");
    assert_string_equal(get(cfg, "RequestReadTimeout"), "header=3 body=4");
    assert_set(cfg, "Timeout", "250MS");
    assert_int_equal(cfg->s.timeout_ms, 250);
}

static void test_levels_map_to_enum(void **state)
{
    mpm_config_t *cfg = *state;
    static const struct {
        const char *name;
        int level;
    } levels[] = {{"error", MPM_LOG_ERROR},
                  {"warn", MPM_LOG_WARN},
                  {"notice", MPM_LOG_NOTICE},
                  {"info", MPM_LOG_INFO},
                  {"debug", MPM_LOG_DEBUG}};
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
        assert_set(cfg, "LogLevel", levels[i].name);
        assert_int_equal(cfg->s.log_level, levels[i].level);
    }
}

static void test_bad_values(void **state)
{
    mpm_config_t *cfg = *state;
    assert_rejected(cfg, "KeepAlive", "maybe", "KeepAlive: 'maybe' is not On or Off");
    assert_rejected(cfg, "KeepAlive", "1", "is not On or Off");
    assert_rejected(cfg, "KeepAlive", "", "is not On or Off");
    assert_rejected(cfg, "ThreadsPerChild", "abc", "ThreadsPerChild: 'abc' is not a number");
    assert_rejected(cfg, "ThreadsPerChild", "1.5", "'1.5' is not a number");
    assert_rejected(cfg, "ThreadsPerChild", "5x", "'5x' is not a number");
    assert_rejected(cfg, "ThreadsPerChild", "", "'' is not a number");
    assert_rejected(cfg, "ThreadsPerChild", "   ", "'' is not a number");
    assert_rejected(cfg, "ThreadsPerChild", "+5", "is not a number");
    assert_rejected(cfg, "LimitRequestBody", "10X",
                    "LimitRequestBody: '10X' is not a size (bytes, or N followed by K, M or G)");
    assert_rejected(cfg, "LimitRequestBody", "K", "is not a size");
    assert_rejected(cfg, "KeepAliveTimeout", "abc",
                    "KeepAliveTimeout: 'abc' is not a time (seconds, or N ms)");
    assert_rejected(cfg, "KeepAliveTimeout", "5m", "'5m' is not a time");
    assert_rejected(cfg, "KeepAliveTimeout", "5 minutes", "is not a time");
    assert_rejected(cfg, "KeepAliveTimeout", "ms", "is not a time");
    assert_rejected(cfg, "MPM", "threaded", "MPM: 'threaded' is not one of prefork|worker|event");
    assert_rejected(cfg, "MPM", "", "is not one of");
    assert_rejected(cfg, "LogLevel", "trace8",
                    "LogLevel: 'trace8' is not one of error|warn|notice|info|debug");
    assert_rejected(cfg, "Listen", "localhost:80", "host names are not resolved");
    assert_rejected(cfg, "Listen", "", "Listen: empty address");
    assert_rejected(cfg, "KeepAlive", NULL, "KeepAlive: missing value");
}

static void test_bad_request_read_timeout(void **state)
{
    mpm_config_t *cfg = *state;
    assert_rejected(cfg, "RequestReadTimeout", "header=20-40", "a timeout range needs MinRate");
    assert_rejected(cfg, "RequestReadTimeout", "body=40-20,MinRate=5",
                    "the maximum must be larger than the timeout");
    assert_rejected(cfg, "RequestReadTimeout", "body=20-20,MinRate=5",
                    "the maximum must be larger than the timeout");
    assert_rejected(cfg, "RequestReadTimeout", "header=0-10,MinRate=5", "turned off (0)");
    assert_rejected(cfg, "RequestReadTimeout", "header=0,MinRate=5", "turned off (0)");
    assert_rejected(cfg, "RequestReadTimeout", "header=10,MinRate=0", "MinRate '0' is not a rate");
    assert_rejected(cfg, "RequestReadTimeout", "header=10,MinRate=abc",
                    "MinRate 'abc' is not a rate");
    assert_rejected(cfg, "RequestReadTimeout", "header=10,MinRate=", "is not a rate");
    assert_rejected(cfg, "RequestReadTimeout", "header=10,MinRate=99999999999", "is not a rate");
    assert_rejected(cfg, "RequestReadTimeout", "header=10,Rate=5", "expected MinRate=R");
    assert_rejected(cfg, "RequestReadTimeout", "header=10-,MinRate=5", "is not a time");
    assert_rejected(cfg, "RequestReadTimeout", "header=-5", "out of range");
    assert_rejected(cfg, "RequestReadTimeout", "header=10-x,MinRate=5", "'x' is not a time");
    assert_rejected(cfg, "RequestReadTimeout", "header=90000", "out of range (0s..86400s)");
    assert_rejected(cfg, "RequestReadTimeout", "MinRate=500", "unknown part 'MinRate=500'");
    assert_rejected(cfg, "RequestReadTimeout", "handshake=5", "unknown part 'handshake=5'");
    assert_rejected(cfg, "RequestReadTimeout", "header=abc", "'abc' is not a time");
    assert_rejected(cfg, "RequestReadTimeout", "", "is not a time");
    assert_rejected(cfg, "RequestBodyTimeout", "x", "'x' is not a time");
    assert_rejected(cfg, "RequestBodyTimeout", "5-9", "a timeout range needs MinRate");
    /* The valid first part must not be applied when the second fails. */
    assert_rejected(cfg, "RequestReadTimeout", "header=5 body=abc", "'abc' is not a time");
    assert_int_equal(cfg->s.header_timeout.timeout_ms, 20000);
    assert_int_equal(cfg->s.header_timeout.max_ms, 40000);
    assert_string_equal(get(cfg, "RequestReadTimeout"),
                        "header=20-40,MinRate=500 body=20,MinRate=500");
}

static void test_request_read_timeout_forms(void **state)
{
    mpm_config_t *cfg = *state;
    /* A bare time sets both stages, without MinRate. */
    assert_set(cfg, "RequestReadTimeout", "30");
    assert_string_equal(get(cfg, "RequestReadTimeout"), "header=30 body=30");
    assert_int_equal(cfg->s.header_timeout.min_rate, 0);
    assert_int_equal(cfg->s.body_timeout.max_ms, 0);
    /* A part replaces its stage; the other stage keeps its value. */
    assert_set(cfg, "RequestReadTimeout", "header=10-30,MinRate=250");
    assert_string_equal(get(cfg, "RequestReadTimeout"), "header=10-30,MinRate=250 body=30");
    assert_int_equal(cfg->s.header_timeout.timeout_ms, 10000);
    assert_int_equal(cfg->s.header_timeout.max_ms, 30000);
    assert_int_equal(cfg->s.header_timeout.min_rate, 250);
    assert_set(cfg, "RequestReadTimeout", "body=300ms");
    assert_string_equal(get(cfg, "RequestReadTimeout"), "header=10-30,MinRate=250 body=300ms");
    assert_int_equal(cfg->s.body_timeout.timeout_ms, 300);
    assert_set(cfg, "RequestReadTimeout", "header=10");
    assert_string_equal(get(cfg, "RequestReadTimeout"), "header=10 body=300ms");
    assert_set(cfg, "RequestReadTimeout", "  body=2,MinRate=100   header=3 ");
    assert_int_equal(cfg->s.header_timeout.timeout_ms, 3000);
    assert_int_equal(cfg->s.body_timeout.timeout_ms, 2000);
    assert_int_equal(cfg->s.body_timeout.min_rate, 100);
    /* body=T,MinRate=R without a maximum: the extension has no cap. */
    assert_int_equal(cfg->s.body_timeout.max_ms, 0);
    /* 0 turns a stage off. */
    assert_set(cfg, "RequestReadTimeout", "header=0");
    assert_string_equal(get(cfg, "RequestReadTimeout"), "header=0 body=2,MinRate=100");
    assert_int_equal(cfg->s.header_timeout.timeout_ms, 0);
    /* RequestBodyTimeout is the body part alone, in the same syntax. */
    assert_set(cfg, "RequestBodyTimeout", "8");
    assert_string_equal(get(cfg, "RequestReadTimeout"), "header=0 body=8");
    assert_string_equal(get(cfg, "RequestBodyTimeout"), "8");
    assert_set(cfg, "RequestBodyTimeout", "5-50,MinRate=1000");
    assert_string_equal(get(cfg, "RequestReadTimeout"), "header=0 body=5-50,MinRate=1000");
    assert_int_equal(cfg->s.body_timeout.max_ms, 50000);
    assert_set(cfg, "RequestReadTimeout", "0");
    assert_string_equal(get(cfg, "RequestReadTimeout"), "header=0 body=0");
}

static void test_ranges(void **state)
{
    mpm_config_t *cfg = *state;
    assert_rejected(cfg, "ThreadsPerChild", "0", "ThreadsPerChild: 0 is out of range (1..100000)");
    assert_rejected(cfg, "ThreadsPerChild", "100001", "100001 is out of range (1..100000)");
    assert_rejected(cfg, "ThreadsPerChild", "-1", "-1 is out of range (1..100000)");
    assert_rejected(cfg, "ThreadsPerChild", "99999999999999999999999", "out of range");
    assert_rejected(cfg, "ListenBacklog", "0", "out of range (1..65535)");
    assert_rejected(cfg, "LimitRequestFields", "0", "out of range (1..32767)");
    assert_rejected(cfg, "ServerLimit", "200001", "out of range (0..200000)");
    assert_rejected(cfg, "MinSpareServers", "0", "out of range (1..200000)");
    assert_rejected(cfg, "AsyncRequestWorkerFactor", "0",
                    "AsyncRequestWorkerFactor: 0 is out of range (0.001..1000)");
    assert_rejected(cfg, "AsyncConnectionLimit", "1000001", "out of range (0..1000000)");
    assert_rejected(cfg, "AsyncConnectionLimit", "-1", "out of range (0..1000000)");
    assert_rejected(cfg, "RequestBodyPrefetch", "16777217",
                    "RequestBodyPrefetch: 16777217 is out of range (0..16777216 bytes)");
    assert_rejected(cfg, "RequestBodyPrefetch", "17M", "out of range");
    assert_rejected(cfg, "RequestBodyPrefetch", "-1", "out of range");
    assert_rejected(cfg, "LimitRequestLine", "0",
                    "LimitRequestLine: 0 is out of range (1..1048576 bytes)");
    assert_rejected(cfg, "LimitRequestLine", "2M", "2M is out of range");
    assert_rejected(cfg, "LimitRequestBody", "-5", "out of range");
    assert_rejected(cfg, "LimitRequestBody", "99999999999G", "out of range");
    assert_rejected(cfg, "KeepAliveTimeout", "0",
                    "KeepAliveTimeout: 0 is out of range (1ms..86400s)");
    assert_rejected(cfg, "KeepAliveTimeout", "86401", "out of range (1ms..86400s)");
    assert_rejected(cfg, "KeepAliveTimeout", "-5", "out of range");
    assert_rejected(cfg, "KeepAliveTimeout", "99999999999999999999", "out of range");
    assert_rejected(cfg, "Timeout", "0ms", "out of range");
    assert_rejected(cfg, "DrainWindow", "3601", "out of range (0s..3600s)");
    /* The bounds themselves are accepted. */
    assert_set(cfg, "ThreadsPerChild", "1");
    assert_set(cfg, "KeepAliveTimeout", "1ms");
    assert_set(cfg, "KeepAliveTimeout", "86400");
    assert_set(cfg, "LimitRequestLine", "1M");
    assert_set(cfg, "GracefulShutdownTimeout", "0");
}

/* AsyncRequestWorkerFactor is a real number kept exact in thousandths,
 * where httpd would truncate "1.5" to 1. */
static void test_worker_factor_fixed_point(void **state)
{
    mpm_config_t *cfg = *state;
    static const struct {
        const char *in;
        unsigned milli;
        const char *out;
    } ok[] = {
        {"2", 2000, "2"},         {"1.5", 1500, "1.5"},           {"0.25", 250, "0.25"},
        {"2.125", 2125, "2.125"}, {"0.001", 1, "0.001"},          {" 3.5 ", 3500, "3.5"},
        {"10.10", 10100, "10.1"}, {"999.999", 999999, "999.999"}, {"1000.000", 1000000, "1000"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_set(cfg, "AsyncRequestWorkerFactor", ok[i].in);
        if (cfg->s.async_worker_factor_milli != ok[i].milli)
            fail_msg("'%s' stored as %u, expected %u", ok[i].in, cfg->s.async_worker_factor_milli,
                     ok[i].milli);
        assert_string_equal(get(cfg, "AsyncRequestWorkerFactor"), ok[i].out);
    }
    assert_int_equal(mpm_config_set_int(cfg, "AsyncRequestWorkerFactor", 7), 0);
    assert_int_equal(cfg->s.async_worker_factor_milli, 7000);

    const char *key = "AsyncRequestWorkerFactor";
    assert_rejected(cfg, key, "2.1234",
                    "AsyncRequestWorkerFactor: '2.1234' has more than 3 decimals");
    assert_rejected(cfg, key, "0.0001", "has more than 3 decimals");
    assert_rejected(
        cfg, key, "",
        "AsyncRequestWorkerFactor: '' is not a number (N, or N.ddd with up to 3 decimals)");
    assert_rejected(cfg, key, "  ", "'' is not a number");
    assert_rejected(cfg, key, "abc", "'abc' is not a number");
    assert_rejected(cfg, key, "1.", "'1.' is not a number");
    assert_rejected(cfg, key, ".5", "'.5' is not a number");
    assert_rejected(cfg, key, "1.5x", "'1.5x' is not a number");
    assert_rejected(cfg, key, "1.2.3", "'1.2.3' is not a number");
    assert_rejected(cfg, key, "1,5", "'1,5' is not a number");
    assert_rejected(cfg, key, "+2", "'+2' is not a number");
    assert_rejected(cfg, key, "1e3", "'1e3' is not a number");
    assert_rejected(cfg, key, "2.12345x", "is not a number");
    assert_rejected(cfg, key, "-1.5", "-1.5 is out of range (0.001..1000)");
    assert_rejected(cfg, key, "-0.5", "out of range");
    assert_rejected(cfg, key, "0", "0 is out of range");
    assert_rejected(cfg, key, "0.000", "0.000 is out of range");
    assert_rejected(cfg, key, "1000.001", "1000.001 is out of range (0.001..1000)");
    assert_rejected(cfg, key, "1001", "out of range");
    assert_rejected(cfg, key, "99999999999999999999", "out of range");
    assert_rejected(cfg, key, "18446744073709551.5", "out of range");
    assert_int_equal(cfg->s.async_worker_factor_milli, 7000);
}

static void test_unknown_directive(void **state)
{
    mpm_config_t *cfg = *state;
    mpm__settings_t before = cfg->s;
    assert_int_equal(mpm_config_set(cfg, "Foo", "1"), MPM_ECONFIG);
    assert_string_equal(mpm_config_errmsg(cfg), "unknown directive 'Foo'");
    assert_int_equal(mpm_config_set_int(cfg, "KeepAliveTimeoutX", 1), MPM_ECONFIG);
    assert_string_equal(mpm_config_errmsg(cfg), "unknown directive 'KeepAliveTimeoutX'");
    assert_memory_equal(&before, &cfg->s, sizeof before);
    char buf[32];
    assert_int_equal(mpm_config_get(cfg, "Foo", buf, sizeof buf), MPM_ECONFIG);
}

static void test_errmsg_persists_until_next_failure(void **state)
{
    mpm_config_t *cfg = *state;
    assert_string_equal(mpm_config_errmsg(cfg), "");
    assert_int_equal(mpm_config_set(cfg, "Timeout", "x"), MPM_ECONFIG);
    assert_contains(mpm_config_errmsg(cfg), "Timeout: 'x'");
    assert_set(cfg, "Timeout", "3");
    assert_int_equal(mpm_config_set(cfg, "KeepAlive", "x"), MPM_ECONFIG);
    assert_contains(mpm_config_errmsg(cfg), "KeepAlive: 'x'");
    assert_string_equal(mpm_config_errmsg(NULL), "");
}

static void test_set_int(void **state)
{
    mpm_config_t *cfg = *state;
    assert_int_equal(mpm_config_set_int(cfg, "ThreadsPerChild", 8), 0);
    assert_int_equal(cfg->s.threads_per_child, 8);
    assert_int_equal(mpm_config_set_int(cfg, "KeepAliveTimeout", 7), 0);
    assert_int_equal(cfg->s.keepalive_timeout_ms, 7000);
    assert_int_equal(mpm_config_set_int(cfg, "LimitRequestBody", 5000000000LL), 0);
    assert_int_equal(cfg->s.limit_request_body, 5000000000ULL);
    assert_int_equal(mpm_config_set_int(cfg, "ThreadsPerChild", -3), MPM_ECONFIG);
    assert_contains(mpm_config_errmsg(cfg), "-3 is out of range (1..100000)");
    assert_int_equal(cfg->s.threads_per_child, 8);
    assert_int_equal(mpm_config_set_int(cfg, "KeepAlive", 1), MPM_ECONFIG);
    assert_contains(mpm_config_errmsg(cfg), "not On or Off");
}

static void test_get_buffer_and_args(void **state)
{
    mpm_config_t *cfg = *state;
    char buf[4];
    assert_int_equal(mpm_config_get(cfg, "ListenBacklog", buf, sizeof buf), 3);
    assert_string_equal(buf, "511");
    assert_int_equal(mpm_config_get(cfg, "ThreadsPerChild", buf, 2), MPM_ERANGE);
    assert_int_equal(mpm_config_get(cfg, "ListenBacklog", buf, 3), MPM_ERANGE);
    assert_int_equal(mpm_config_get(cfg, "ListenBacklog", NULL, 0), 3); /* the size needed */
    assert_int_equal(mpm_config_get(NULL, "ListenBacklog", buf, sizeof buf), MPM_EINVAL);
    assert_int_equal(mpm_config_get(cfg, NULL, buf, sizeof buf), MPM_EINVAL);
    assert_int_equal(mpm_config_set(NULL, "Timeout", "1"), MPM_EINVAL);
    assert_int_not_equal(mpm_config_set(cfg, NULL, "1"), 0);
    assert_int_equal(mpm_config_new(NULL), MPM_EINVAL);
    mpm_config_free(NULL);
}

static void test_value_too_long(void **state)
{
    char big[600];
    memset(big, '1', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_rejected(*state, "Timeout", big, "Timeout: value too long");
}

static void test_listen_accumulates(void **state)
{
    mpm_config_t *cfg = *state;
    assert_set(cfg, "Listen", "127.0.0.1:8080");
    assert_set(cfg, "listen", "[::1]:8081");
    assert_set(cfg, "Listen", "unix:/tmp/mpm.sock");
    assert_string_equal(get(cfg, "Listen"), "127.0.0.1:8080 [::1]:8081 unix:/tmp/mpm.sock");
    assert_int_equal(cfg->s.nlisten, 3);
    assert_int_equal(cfg->s.listen[1].host_fd, -1);
    assert_rejected(cfg, "Listen", "::1:80", "Listen: '::1:80': an IPv6 address needs brackets");
    assert_rejected(cfg, "Listen", "1.2.3.4:70000", "'70000' is not a port number");
    assert_int_equal(cfg->s.nlisten, 3);
}

static void test_listen_limit(void **state)
{
    mpm_config_t *cfg = *state;
    char addr[32];
    for (int i = 0; i < MPM__MAX_LISTENERS; i++) {
        snprintf(addr, sizeof addr, "127.0.0.1:%d", 9000 + i);
        assert_set(cfg, "Listen", addr);
    }
    assert_rejected(cfg, "Listen", "127.0.0.1:9999", "too many listeners (at most 16)");
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(mpm_config_add_listen_fd(cfg, fd), MPM_ECONFIG);
    assert_contains(mpm_config_errmsg(cfg), "too many listeners");
    close(fd);
}

static void test_add_listen_fd(void **state)
{
    mpm_config_t *cfg = *state;
    int tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int p[2];
    assert_true(tcp >= 0 && udp >= 0);
    assert_int_equal(pipe(p), 0);
    assert_int_equal(mpm_config_add_listen_fd(cfg, -1), MPM_EINVAL);
    assert_int_equal(mpm_config_add_listen_fd(cfg, udp), MPM_EINVAL);
    assert_contains(mpm_config_errmsg(cfg), "not a stream socket");
    assert_int_equal(mpm_config_add_listen_fd(cfg, p[0]), MPM_EINVAL);
    assert_int_equal(cfg->s.nlisten, 0);
    assert_int_equal(mpm_config_add_listen_fd(cfg, tcp), 0);
    assert_int_equal(cfg->s.nlisten, 1);
    assert_int_equal(cfg->s.listen[0].host_fd, tcp);
    assert_string_equal(cfg->s.listen[0].addr, "");
    assert_int_equal(mpm_config_add_listen_fd(cfg, tcp), MPM_ECONFIG);
    assert_contains(mpm_config_errmsg(cfg), "already added");
    /* Host fds have no Listen text. */
    assert_set(cfg, "Listen", "8080");
    assert_string_equal(get(cfg, "Listen"), "8080");
    assert_int_equal(mpm_config_add_listen_fd(NULL, tcp), MPM_EINVAL);
    close(tcp);
    close(udp);
    close(p[0]);
    close(p[1]);
}

static void on_request(mpm_request_t *req, void *data)
{
}
static int on_init(void *data)
{
    return 0;
}
static void on_exit_cb(void *data)
{
}
static void on_log(mpm_log_level_t level, const char *msg, void *data)
{
}
static void on_access(const mpm_access_entry_t *e, void *data)
{
}

static void test_callbacks(void **state)
{
    mpm_config_t *cfg = *state;
    int tag;
    assert_int_equal(mpm_config_set_handler(cfg, NULL, NULL), MPM_EINVAL);
    assert_int_equal(mpm_config_set_handler(NULL, on_request, NULL), MPM_EINVAL);
    assert_int_equal(mpm_config_set_handler(cfg, on_request, &tag), 0);
    assert_ptr_equal(cfg->handler, on_request);
    assert_ptr_equal(cfg->handler_data, &tag);
    assert_int_equal(mpm_config_set_child_hooks(cfg, on_init, on_exit_cb, &tag), 0);
    assert_ptr_equal(cfg->child_init, on_init);
    assert_ptr_equal(cfg->child_exit, on_exit_cb);
    assert_ptr_equal(cfg->child_data, &tag);
    assert_int_equal(mpm_config_set_thread_hooks(cfg, NULL, on_exit_cb, &tag), 0);
    assert_null(cfg->thread_init);
    assert_ptr_equal(cfg->thread_exit, on_exit_cb);
    assert_int_equal(mpm_config_set_log_cb(cfg, on_log, &tag), 0);
    assert_ptr_equal(cfg->log_cb, on_log);
    assert_int_equal(mpm_config_set_access_log_cb(cfg, on_access, &tag), 0);
    assert_ptr_equal(cfg->access_cb, on_access);
    assert_ptr_equal(cfg->access_data, &tag);
    assert_int_equal(mpm_config_set_log_cb(NULL, on_log, NULL), MPM_EINVAL);
    assert_int_equal(mpm_config_set_child_hooks(NULL, NULL, NULL, NULL), MPM_EINVAL);
    assert_int_equal(mpm_config_set_thread_hooks(NULL, NULL, NULL, NULL), MPM_EINVAL);
    assert_int_equal(mpm_config_set_access_log_cb(NULL, NULL, NULL), MPM_EINVAL);
}

/* ------------------------------------------------------------------ */
/* mpm__settings_check                                                */

static void check_fails(mpm__settings_t *s, const char *why)
{
    char err[256] = "";
    assert_int_equal(mpm__settings_check(s, err, sizeof err), MPM_ECONFIG);
    assert_contains(err, why);
}

static void test_settings_check(void **state)
{
    mpm_config_t *cfg = *state;
    char err[256] = "";
    check_fails(&cfg->s, "no listener");
    assert_set(cfg, "Listen", "127.0.0.1:0");
    /* The defaults (0 = the strategy's default included) pass. */
    assert_int_equal(mpm__settings_check(&cfg->s, err, sizeof err), 0);

    mpm__settings_t s = cfg->s;
    s.min_spare_servers = 20;
    check_fails(&s, "MaxSpareServers (10) must be at least MinSpareServers (20)");
    s.max_spare_servers = 20;
    assert_int_equal(mpm__settings_check(&s, err, sizeof err), 0);

    s = cfg->s;
    s.threads_per_child = 65;
    check_fails(&s, "ThreadsPerChild (65) must not exceed ThreadLimit (64)");

    s = cfg->s;
    s.min_spare_threads = 300;
    check_fails(&s, "MaxSpareThreads (250) must be at least MinSpareThreads (300)");

    s = cfg->s;
    s.start_servers = 20;
    assert_int_equal(mpm__settings_check(&s, err, sizeof err), 0);
    s.server_limit = 10;
    check_fails(&s, "StartServers (20) must not exceed ServerLimit (10)");

    mpm__settings_t t = cfg->s;
    assert_int_equal(mpm__settings_add_cert(&t, "a.crt", "a.key", err, sizeof err), 0);
    t.listen[0].tls = 1;
    assert_int_equal(mpm__settings_check(&t, err, sizeof err), 0);
    t.ntls_cert = 0;
    check_fails(&t, "a TLS listener needs a certificate: set TLSCertificate");
    /* A NULL message buffer is allowed. */
    assert_int_equal(mpm__settings_check(&s, NULL, 0), MPM_ECONFIG);
}

/* ------------------------------------------------------------------ */
/* Errors and version                                                 */

static void test_strerror_library_codes(void **state)
{
    assert_string_equal(mpm_strerror(MPM_ECONFIG), "invalid configuration");
    assert_string_equal(mpm_err_name(MPM_ECONFIG), "ECONFIG");
    assert_string_equal(mpm_strerror(MPM_ECHILD), "child process failed to start");
    assert_string_equal(mpm_err_name(MPM_ECHILD), "ECHILD");
    assert_string_equal(mpm_strerror(MPM_EADDRINUSE), "address already in use");
    assert_string_equal(mpm_err_name(MPM_EADDRINUSE), "EADDRINUSE");
    assert_string_equal(mpm_err_name(MPM_ETOOLARGE), "ETOOLARGE");
    assert_int_equal(MPM_EADDRINUSE, -EADDRINUSE);
}

static void test_strerror_errno_codes(void **state)
{
    /* Codes outside the table fall back to the system's static text. */
    const char *msg = mpm_strerror(-EPERM);
    assert_non_null(msg);
    assert_string_not_equal(msg, "unknown error");
    assert_string_equal(mpm_err_name(-EPERM), "EPERM");
    assert_string_equal(mpm_err_name(-ECONNREFUSED), "ECONNREFUSED");
}

static void test_strerror_unknown(void **state)
{
    assert_string_equal(mpm_strerror(-5099), "unknown error");
    assert_string_equal(mpm_err_name(-5099), "UNKNOWN");
    assert_string_equal(mpm_strerror(12345), "unknown error");
    assert_string_equal(mpm_err_name(12345), "UNKNOWN");
    assert_string_equal(mpm_strerror(-100000), "unknown error");
    assert_string_equal(mpm_strerror(0), "success");
}

static void test_version(void **state)
{
    char expect[32];
    snprintf(expect, sizeof expect, "%d.%d.%d", MPM_VERSION_MAJOR, MPM_VERSION_MINOR,
             MPM_VERSION_PATCH);
    assert_int_equal(mpm_version(), MPM_VERSION_HEX);
    assert_string_equal(mpm_version_string(), expect);
}

/* TLSListen shares Listen's list and limit; each readback shows its own. */
static void test_tls_listen(void **state)
{
    mpm_config_t *cfg = *state;
    assert_set(cfg, "Listen", "127.0.0.1:80");
    assert_set(cfg, "TLSListen", "127.0.0.1:443");
    assert_set(cfg, "TLSListen", "[::1]:8443");
    assert_string_equal(get(cfg, "Listen"), "127.0.0.1:80");
    assert_string_equal(get(cfg, "TLSListen"), "127.0.0.1:443 [::1]:8443");
    assert_int_equal(cfg->s.nlisten, 3);
    assert_int_equal(cfg->s.listen[0].tls, 0);
    assert_int_equal(cfg->s.listen[1].tls, 1);
    assert_rejected(cfg, "TLSListen", "::1:443", "an IPv6 address needs brackets");
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(mpm_config_add_tls_listen_fd(cfg, fd), 0);
    assert_int_equal(cfg->s.listen[3].tls, 1);
    assert_int_equal(cfg->s.listen[3].host_fd, fd);
    close(fd);
}

static void test_tls_certificates(void **state)
{
    mpm_config_t *cfg = *state;
    assert_set(cfg, "TLSCertificate", "a.crt a.key");
    assert_set(cfg, "TLSCertificate", "  both.pem ");
    assert_int_equal(mpm_config_add_tls_certificate(cfg, "/path with space/c.crt", NULL), 0);
    assert_string_equal(get(cfg, "TLSCertificate"), "a.crt a.key, both.pem, /path with space/c.crt");
    assert_string_equal(cfg->s.tls_cert[1].key, "");
    assert_rejected(cfg, "TLSCertificate", "a.crt a.key extra", "is not CERTFILE [KEYFILE]");
    assert_int_equal(mpm_config_add_tls_certificate(cfg, NULL, "k"), MPM_EINVAL);
    for (int i = 3; i < MPM__MAX_CERTS; i++)
        assert_set(cfg, "TLSCertificate", "x.crt");
    assert_rejected(cfg, "TLSCertificate", "y.crt", "too many certificates (at most 8)");
}

/* Values longer than what they are stored in are refused whole, never cut
 * (a cut path or address would name something else). */
static void test_lengths_refused_not_cut(void **state)
{
    mpm_config_t *cfg = *state;
    char path[300], pair[320];
    memset(path, 'p', sizeof path - 1);
    path[sizeof path - 1] = '\0';
    char addr[300] = "unix:";
    memset(addr + 5, 's', sizeof addr - 6);
    addr[sizeof addr - 1] = '\0';
    assert_rejected(cfg, "Listen", addr, "Listen: address too long (at most 255 characters)");
    assert_rejected(cfg, "TLSCertificate", path, "TLSCertificate: path too long (at most 255");
    snprintf(pair, sizeof pair, "a.crt %.290s", path);
    assert_rejected(cfg, "TLSCertificate", pair, "TLSCertificate: path too long");
    assert_int_equal(mpm_config_add_tls_certificate(cfg, "", NULL), MPM_ECONFIG);
    assert_contains(mpm_config_errmsg(cfg), "missing certificate file");
    assert_int_equal(cfg->s.ntls_cert, 0);
    char suites[400];
    memset(suites, 'S', sizeof suites - 1);
    suites[sizeof suites - 1] = '\0';
    assert_rejected(cfg, "TLSCipherSuites", suites, "TLSCipherSuites: value too long");
}

/* httpd's SSLProtocol forms, for the two versions spoken. */
static void test_tls_protocol(void **state)
{
    mpm_config_t *cfg = *state;
    assert_set(cfg, "TLSProtocol", "TLSv1.3");
    assert_int_equal(cfg->s.tls_protocols, MPM__TLS_1_3);
    assert_string_equal(get(cfg, "TLSProtocol"), "TLSv1.3");
    assert_set(cfg, "TLSProtocol", "+TLSv1.2");
    assert_string_equal(get(cfg, "TLSProtocol"), "TLSv1.2 TLSv1.3");
    assert_set(cfg, "TLSProtocol", "all -TLSv1.3");
    assert_string_equal(get(cfg, "TLSProtocol"), "TLSv1.2");
    assert_rejected(cfg, "TLSProtocol", "TLSv1.1", "'TLSv1.1' is not supported");
    assert_rejected(cfg, "TLSProtocol", "SSLv3", "is not supported");
    assert_rejected(cfg, "TLSProtocol", "-TLSv1.2", "leaves no protocol");
    assert_rejected(cfg, "TLSProtocol", "+", "is not a protocol");
}

/* OpenSSL judges the lists when they are set, not at the first handshake. */
static void test_tls_ciphers(void **state)
{
    mpm_config_t *cfg = *state;
    assert_set(cfg, "TLSCiphers", "ECDHE-RSA-AES128-GCM-SHA256");
    assert_string_equal(get(cfg, "TLSCiphers"), "ECDHE-RSA-AES128-GCM-SHA256");
    assert_set(cfg, "TLSCipherSuites", "TLS_AES_256_GCM_SHA384");
    assert_rejected(cfg, "TLSCiphers", "NO-SUCH-CIPHER", "selects no cipher");
    assert_rejected(cfg, "TLSCipherSuites", "TLS_NO_SUCH", "selects no cipher");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_defaults_as_text),
        T(test_lengths_refused_not_cut),
        T(test_defaults_in_struct),
        T(test_round_trips),
        T(test_aliases_share_storage),
        T(test_case_insensitive),
        T(test_levels_map_to_enum),
        T(test_bad_values),
        T(test_bad_request_read_timeout),
        T(test_request_read_timeout_forms),
        T(test_ranges),
        T(test_worker_factor_fixed_point),
        T(test_unknown_directive),
        T(test_errmsg_persists_until_next_failure),
        T(test_set_int),
        T(test_get_buffer_and_args),
        T(test_value_too_long),
        T(test_listen_accumulates),
        T(test_listen_limit),
        T(test_add_listen_fd),
        T(test_tls_listen),
        T(test_tls_certificates),
        T(test_tls_protocol),
        T(test_tls_ciphers),
        T(test_callbacks),
        T(test_settings_check),
        cmocka_unit_test(test_strerror_library_codes),
        cmocka_unit_test(test_strerror_errno_codes),
        cmocka_unit_test(test_strerror_unknown),
        cmocka_unit_test(test_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
