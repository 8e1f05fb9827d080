/* mpm_percent_decode(): RFC 3986 escapes, and the refusals that keep a
 * decoded path or value from smuggling a NUL or a separator. */
#include <stddef.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include <mpmlib/mpmlib.h>

static int decode(const char *src, unsigned flags, char *out, size_t cap)
{
    return mpm_percent_decode(src, strlen(src), out, cap, flags);
}

static void decodes_escapes(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(decode("/a%20b%2e%7E+c", 0, out, sizeof out), 8);
    assert_string_equal(out, "/a b.~+c");
    assert_int_equal(decode("x+y%2By", MPM_DECODE_PLUS_AS_SPACE, out, sizeof out), 5);
    assert_string_equal(out, "x y+y");
    assert_int_equal(decode("%c3%A9", 0, out, sizeof out), 2);
    assert_string_equal(out, "\xc3\xa9");
    assert_int_equal(decode("", 0, out, sizeof out), 0);
    assert_string_equal(out, "");
}

static void refuses_bad_escapes_nul_and_slash(void **state)
{
    (void)state;
    char out[64];
    const char *bad[] = {"%", "%2", "a%g0", "%0g", "%%41", "a%00b", "..%2f", "%2F"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(decode(bad[i], 0, out, sizeof out), MPM_EPROTO);
    assert_int_equal(decode("a%2Fb", MPM_DECODE_ALLOW_SLASH, out, sizeof out), 3);
    assert_string_equal(out, "a/b");
    assert_int_equal(decode("a/b", 0, out, sizeof out), 3); /* a literal '/' is fine */
}

static void sizes_and_arguments(void **state)
{
    (void)state;
    char out[4];
    assert_int_equal(decode("abc", 0, out, sizeof out), 3);
    assert_int_equal(decode("abcd", 0, out, sizeof out), MPM_ERANGE);
    assert_int_equal(decode("%41%42%43", 0, out, sizeof out), 3); /* decoded length counts */
    assert_int_equal(mpm_percent_decode(NULL, 0, out, sizeof out, 0), MPM_EINVAL);
    assert_int_equal(mpm_percent_decode("a", 1, NULL, 4, 0), MPM_EINVAL);
    assert_int_equal(mpm_percent_decode("a", 1, out, 0, 0), MPM_EINVAL);
    assert_int_equal(mpm_percent_decode("a", 1, out, sizeof out, 0x80), MPM_EINVAL);
    /* len, not the NUL, ends the input */
    assert_int_equal(mpm_percent_decode("abcdef", 2, out, sizeof out, 0), 2);
    assert_string_equal(out, "ab");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(decodes_escapes),
        cmocka_unit_test(refuses_bad_escapes_nul_and_slash),
        cmocka_unit_test(sizes_and_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
