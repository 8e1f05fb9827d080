/* A host that defines symbols with the names of mpmlib's internals (its own
 * llhttp, a helper of its own): linking it with the static library must not
 * fail with duplicate definitions, and mpmlib must keep using its own. */
int llhttp_init(void *parser, int type, const void *settings);
int mpm__now_ms(void);

int llhttp_init(void *parser, int type, const void *settings)
{
    (void)parser;
    (void)type;
    (void)settings;
    return -1;
}

int mpm__now_ms(void)
{
    return -1;
}
