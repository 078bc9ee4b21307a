#define PCRE2_CODE_UNIT_WIDTH 8
#include "proxy/route_regex.h"

#include <errno.h>
#include <pcre2.h>
#include <pthread.h>

#define MD_PAIRS 16     /* \0..\9 plus room; more groups still match */

static pthread_key_t md_key;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static __thread pcre2_match_data *tl_md;

static void md_free(void *p)
{
    pcre2_match_data_free(p);
}

static void md_key_init(void)
{
    (void)pthread_key_create(&md_key, md_free);
}

/* This thread's match data; the key's destructor frees it at thread exit. */
static pcre2_match_data *thread_md(void)
{
    if (tl_md)
        return tl_md;
    pthread_once(&md_once, md_key_init);
    tl_md = pcre2_match_data_create(MD_PAIRS, NULL);
    if (tl_md)
        pthread_setspecific(md_key, tl_md);
    return tl_md;
}

bool route_regex_match(const cfg_regex *re, const char *p, size_t n)
{
    pcre2_match_data *md = thread_md();
    if (!re->code || !md)
        return false;
    int rc = pcre2_match(re->code, (PCRE2_SPTR)p, n, 0, 0, md, NULL);
    return rc >= 0;
}

static int append(pf_arena *a, pf_str *out, const char *p, size_t n)
{
    return n ? pf_arena_append(a, out, p, n) : 0;
}

int route_regex_rewrite(const cfg_regex_rewrite *rr, const char *p, size_t n, pf_arena *a,
                        pf_str *out)
{
    pcre2_match_data *md = thread_md();
    if (!rr->re.code || !md)
        return append(a, out, p, n);
    size_t pos = 0, copied = 0;
    while (pos <= n) {
        int rc = pcre2_match(rr->re.code, (PCRE2_SPTR)p, n, pos, 0, md, NULL);
        if (rc < 0)
            break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        uint32_t pairs = rc == 0 ? MD_PAIRS : (uint32_t)rc;
        size_t ms = ov[0], me = ov[1];
        if (append(a, out, p + copied, ms - copied))
            return -ENOMEM;
        /* expand the substitution */
        const char *s = rr->subst;
        size_t sn = rr->subst_len, lit = 0;
        for (size_t i = 0; i < sn; i++) {
            if (s[i] != '\\' || i + 1 >= sn)
                continue;
            char d = s[i + 1];
            if (append(a, out, s + lit, i - lit))
                return -ENOMEM;
            if (d >= '0' && d <= '9') {
                uint32_t g = (uint32_t)(d - '0');
                if (g < pairs && ov[2 * g] != PCRE2_UNSET &&
                    append(a, out, p + ov[2 * g], ov[2 * g + 1] - ov[2 * g]))
                    return -ENOMEM;
            } else if (append(a, out, &s[i + 1], 1)) {
                return -ENOMEM;
            }
            i++;
            lit = i + 1;
        }
        if (append(a, out, s + lit, sn - lit))
            return -ENOMEM;
        copied = me;
        if (me == ms) {                 /* empty match: step over one byte */
            if (me >= n)
                break;
            if (append(a, out, p + me, 1))
                return -ENOMEM;
            copied = me + 1;
            pos = me + 1;
        } else {
            pos = me;
        }
    }
    if (copied < n && append(a, out, p + copied, n - copied))
        return -ENOMEM;
    if (!out->p && pf_arena_dup(a, out, "", 0))
        return -ENOMEM;
    return 0;
}
