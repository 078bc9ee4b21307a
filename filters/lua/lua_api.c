/* The Lua stream handle API (Envoy's): handle, header map, buffer, stream
 * info, dynamic metadata, connection and SSL connection objects.
 *
 * Every object is a userdata bound to its coroutine's slot and run
 * (generation): once the run ended or its stream went away, methods raise
 * "object used outside of proper scope" instead of touching the stream.
 * Slots outlive every object (they are freed with the Lua state), so the
 * objects need no finalizer.  Methods are closures over their class's
 * metatable, which is how they check `self` without a registry lookup. */
#include "filters/lua/lua_filter.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <lauxlib.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "config/metadata_config.h"
#include "config/route_config.h"
#include "config/yaml_node.h"
#include "proxy/addr.h"
#include "proxy/downstream.h"
#include "proxy/log.h"
#include "proxy/route_headers.h"
#include "proxy/sock.h"
#include "proxy/tls.h"

typedef struct lobj {
    lua_slot *slot;
    uint32_t gen;                   /* the slot's run this object belongs to */
    int which;                      /* headers: 0 headers, 1 trailers */
} lobj;

typedef struct lchunk {
    size_t n;
    char data[];
} lchunk;

static void push_obj(lua_State *L, lua_co *co, enum lua_mt mt, int which)
{
    lobj *o = lua_newuserdata(L, sizeof *o);
    o->slot = co->slot;
    o->gen = co->slot->gen;
    o->which = which;
    lua_rawgeti(L, LUA_REGISTRYINDEX, co->fs->lw->mt[mt]);
    lua_setmetatable(L, -2);
}

/* The userdata at idx when its metatable is `mt` (a stack index), else NULL. */
static void *check_class(lua_State *L, int idx, int mt)
{
    void *p = lua_touserdata(L, idx);
    if (!p || !lua_getmetatable(L, idx))
        return NULL;
    bool same = lua_rawequal(L, -1, mt);
    lua_pop(L, 1);
    return same ? p : NULL;
}

/* self (argument 1) of a method of its class: the method's upvalue 1 is
 * the class metatable.  Raises a Lua error for a foreign value or a dead
 * object. */
void *pf_lua_self(lua_State *L)
{
    void *o = check_class(L, 1, lua_upvalueindex(1));
    if (!o)
        luaL_argerror(L, 1, "not an object of this class (use ':' to call methods)");
    return o;
}

static lua_co *alive(lua_State *L, lobj **out)
{
    lobj *o = pf_lua_self(L);
    if (o->gen != o->slot->gen || !o->slot->co)
        luaL_error(L, "object used outside of proper scope");
    if (out)
        *out = o;
    return o->slot->co;
}

static pf_stream *stream_of(lua_co *co)
{
    return pf_filter_stream(co->fs->fc);
}

void pf_lua_push_handle(lua_State *L, lua_co *co) { push_obj(L, co, LMT_HANDLE, 0); }
void pf_lua_push_headers(lua_State *L, lua_co *co, int which) { push_obj(L, co, LMT_HEADERS, which); }

void pf_lua_push_body(lua_State *L, lua_co *co)
{
    if (!co->always_wrap && pf_filter_buffer(co->fs->fc, co->dir)->n == 0)
        lua_pushnil(L);
    else
        push_obj(L, co, LMT_BUFFER, 0);
}

void pf_lua_push_chunk(lua_State *L, lua_co *co, const char *p, size_t n)
{
    lchunk *c = lua_newuserdata(L, sizeof *c + n);
    c->n = n;
    if (n)
        memcpy(c->data, p, n);
    lua_rawgeti(L, LUA_REGISTRYINDEX, co->fs->lw->mt[LMT_CHUNK]);
    lua_setmetatable(L, -2);
}

/* ---- header map ---- */

static pf_hdrs *stream_hdrs(pf_stream *s, pf_filter_dir d, int which)
{
    if (d == PF_DECODE)
        return which ? &s->req_trailers : &s->req_hdrs;
    return which ? &s->resp_trailers : &s->resp_hdrs;
}

static pf_hdrs *hdrs_of(lua_co *co, int which)
{
    return stream_hdrs(stream_of(co), co->dir, which);
}

/* A pseudo-header's value (request :method/:path/:authority/:scheme,
 * response :status); false when it is not one. */
static bool stream_pseudo_get(pf_stream *s, pf_filter_dir d, const char *k, pf_str *out,
                              char *tmp, size_t tl)
{
    if (d == PF_DECODE) {
        if (!strcmp(k, ":method")) *out = s->method;
        else if (!strcmp(k, ":path")) *out = s->path;
        else if (!strcmp(k, ":authority")) *out = s->authority;
        else if (!strcmp(k, ":scheme")) *out = s->scheme;
        else return false;
        return true;
    }
    if (strcmp(k, ":status") != 0)
        return false;
    int n = snprintf(tmp, tl, "%d", s->status);
    *out = (pf_str){ tmp, (size_t)n };
    return true;
}

static bool pseudo_get(lua_co *co, const char *k, pf_str *out, char *tmp, size_t tl)
{
    return stream_pseudo_get(stream_of(co), co->dir, k, out, tmp, tl);
}

/* Before a header map change: raises when the headers already went on;
 * request header changes clear the route cache (Envoy's Lua filter does,
 * with its default clear_route_cache: true), so the route is chosen again
 * when the request reaches the router. */
static void check_mutable(lua_State *L, lua_co *co, lobj *o)
{
    if (o->which == 0 && co->hdrs_passed)
        luaL_error(L, "header map can no longer be modified");
    if (o->which == 0 && co->dir == PF_DECODE)
        pf_filter_clear_route_cache(co->fs->fc);
}

static int pseudo_set(lua_State *L, lua_co *co, const char *k, const char *v, size_t vn)
{
    pf_stream *s = stream_of(co);
    pf_str *dst = NULL;
    if (co->dir == PF_DECODE) {
        if (!strcmp(k, ":method")) dst = &s->method;
        else if (!strcmp(k, ":path")) dst = &s->path;
        else if (!strcmp(k, ":authority")) dst = &s->authority;
        else if (!strcmp(k, ":scheme")) dst = &s->scheme;
    } else if (!strcmp(k, ":status")) {
        int st = atoi(v);
        if (st < 100 || st > 999)
            return luaL_error(L, "invalid :status '%s'", v);
        s->status = st;
        return 1;
    }
    if (!dst)
        return 0;
    if (pf_arena_dup(&s->arena, dst, v, vn) != 0)
        return luaL_error(L, "out of memory");
    return 1;
}

static void lower_dup(lua_State *L, pf_stream *s, const char *k, size_t kn, pf_str *out)
{
    if (pf_arena_dup(&s->arena, out, k, kn) != 0)
        luaL_error(L, "out of memory");
    for (size_t i = 0; i < kn; i++)
        ((char *)out->p)[i] = (char)tolower((unsigned char)out->p[i]);
}

int pf_lua_push_header(lua_State *L, pf_stream *s, pf_filter_dir d, int which, const char *k,
                       size_t kn)
{
    char tmp[16];
    pf_str v;
    if (k[0] == ':' && which == 0 && stream_pseudo_get(s, d, k, &v, tmp, sizeof tmp)) {
        lua_pushlstring(L, v.p, v.n);
        return 1;
    }
    const pf_hdrs *h = stream_hdrs(s, d, which);
    luaL_Buffer b;
    int found = 0;
    luaL_buffinit(L, &b);
    for (uint32_t i = 0; i < h->n; i++) {
        if (!pf_str_ieq(h->v[i].name, k, kn))
            continue;
        if (found++)
            luaL_addchar(&b, ',');
        luaL_addlstring(&b, h->v[i].value.p, h->v[i].value.n);
    }
    luaL_pushresult(&b);
    if (!found) {
        lua_pop(L, 1);
        lua_pushnil(L);
    }
    return 1;
}

static int h_get(lua_State *L)
{
    lobj *o;
    lua_co *co = alive(L, &o);
    size_t kn;
    const char *k = luaL_checklstring(L, 2, &kn);
    return pf_lua_push_header(L, stream_of(co), co->dir, o->which, k, kn);
}

static int h_get_at(lua_State *L)
{
    lobj *o;
    lua_co *co = alive(L, &o);
    size_t kn;
    const char *k = luaL_checklstring(L, 2, &kn);
    lua_Integer idx = luaL_checkinteger(L, 3);
    const pf_hdrs *h = hdrs_of(co, o->which);
    lua_Integer at = 0;
    for (uint32_t i = 0; i < h->n; i++)
        if (pf_str_ieq(h->v[i].name, k, kn) && at++ == idx) {
            lua_pushlstring(L, h->v[i].value.p, h->v[i].value.n);
            return 1;
        }
    lua_pushnil(L);
    return 1;
}

static int h_num_values(lua_State *L)
{
    lobj *o;
    lua_co *co = alive(L, &o);
    size_t kn;
    const char *k = luaL_checklstring(L, 2, &kn);
    const pf_hdrs *h = hdrs_of(co, o->which);
    lua_Integer n = 0;
    for (uint32_t i = 0; i < h->n; i++)
        n += pf_str_ieq(h->v[i].name, k, kn);
    lua_pushinteger(L, n);
    return 1;
}

static int h_add_impl(lua_State *L, bool replace)
{
    lobj *o;
    lua_co *co = alive(L, &o);
    check_mutable(L, co, o);
    size_t kn, vn;
    const char *k = luaL_checklstring(L, 2, &kn);
    const char *v = luaL_checklstring(L, 3, &vn);
    if (k[0] == ':' && o->which == 0 && pseudo_set(L, co, k, v, vn))
        return 0;
    pf_stream *s = stream_of(co);
    pf_hdrs *h = hdrs_of(co, o->which);
    pf_str name, val;
    lower_dup(L, s, k, kn, &name);
    if (pf_arena_dup(&s->arena, &val, v, vn) != 0)
        return luaL_error(L, "out of memory");
    if (replace)
        pf_hdrs_remove(h, name.p, name.n);
    if (pf_hdrs_add(h, &s->arena, name, val) != 0)
        return luaL_error(L, "out of memory");
    return 0;
}

static int h_add(lua_State *L) { return h_add_impl(L, false); }
static int h_replace(lua_State *L) { return h_add_impl(L, true); }

static int h_remove(lua_State *L)
{
    lobj *o;
    lua_co *co = alive(L, &o);
    check_mutable(L, co, o);
    size_t kn;
    const char *k = luaL_checklstring(L, 2, &kn);
    char low[256];
    if (kn >= sizeof low || k[0] == ':')
        return 0;
    for (size_t i = 0; i < kn; i++)
        low[i] = (char)tolower((unsigned char)k[i]);
    pf_hdrs_remove(hdrs_of(co, o->which), low, kn);
    return 0;
}

static int h_reason(lua_State *L)
{
    lobj *o;
    lua_co *co = alive(L, &o);
    check_mutable(L, co, o);
    luaL_checkstring(L, 2);         /* accepted; the codecs send the standard phrase */
    return 0;
}

static int pairs_iter(lua_State *L)
{
    lua_Integer i = lua_tointeger(L, lua_upvalueindex(2));
    lua_rawgeti(L, lua_upvalueindex(1), (int)(2 * i + 1));
    if (lua_isnil(L, -1))
        return 1;
    lua_rawgeti(L, lua_upvalueindex(1), (int)(2 * i + 2));
    lua_pushinteger(L, i + 1);
    lua_replace(L, lua_upvalueindex(2));
    return 2;
}

/* Pushes an iterator over the array of alternating keys and values at -1. */
static int push_pairs(lua_State *L)
{
    lua_pushinteger(L, 0);
    lua_pushcclosure(L, pairs_iter, 2);
    return 1;
}

/* pairs() over a snapshot of the table on top of the stack (popped; nil
 * gives an empty iteration): key/value pairs flattened into a list for
 * pairs_iter, so the script may change the table while iterating. */
static int push_table_pairs(lua_State *L)
{
    lua_newtable(L);
    lua_insert(L, -2);
    int n = 0;
    if (!lua_isnil(L, -1)) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pushvalue(L, -2);
            lua_rawseti(L, -5, ++n);
            lua_rawseti(L, -4, ++n);
        }
    }
    lua_pop(L, 1);
    return push_pairs(L);
}

static int h_pairs(lua_State *L)
{
    lobj *o;
    lua_co *co = alive(L, &o);
    lua_newtable(L);
    int n = 0;
    if (o->which == 0) {
        static const char *const req[] = {":authority", ":path", ":method", ":scheme", NULL};
        static const char *const resp[] = {":status", NULL};
        for (const char *const *p = co->dir == PF_DECODE ? req : resp; *p; p++) {
            char tmp[16];
            pf_str v;
            if (pseudo_get(co, *p, &v, tmp, sizeof tmp) && v.n) {
                lua_pushstring(L, *p);
                lua_rawseti(L, -2, ++n);
                lua_pushlstring(L, v.p, v.n);
                lua_rawseti(L, -2, ++n);
            }
        }
    }
    const pf_hdrs *h = hdrs_of(co, o->which);
    for (uint32_t i = 0; i < h->n; i++) {
        lua_pushlstring(L, h->v[i].name.p, h->v[i].name.n);
        lua_rawseti(L, -2, ++n);
        lua_pushlstring(L, h->v[i].value.p, h->v[i].value.n);
        lua_rawseti(L, -2, ++n);
    }
    return push_pairs(L);
}

/* ---- buffers ---- */

static int get_bytes(lua_State *L, const char *p, size_t len)
{
    lua_Integer i = luaL_checkinteger(L, 2), n = luaL_checkinteger(L, 3);
    if (i < 0 || n < 0 || (size_t)i > len || (size_t)n > len - (size_t)i)
        return luaL_error(L, "index/length must be >= 0 and (index + length) must be <= "
                             "buffer size");
    lua_pushlstring(L, p + i, (size_t)n);
    return 1;
}

static int b_length(lua_State *L)
{
    lua_co *co = alive(L, NULL);
    lua_pushinteger(L, (lua_Integer)pf_filter_buffer(co->fs->fc, co->dir)->n);
    return 1;
}

static int b_get_bytes(lua_State *L)
{
    lua_co *co = alive(L, NULL);
    pf_fbuf *b = pf_filter_buffer(co->fs->fc, co->dir);
    return get_bytes(L, b->p, b->n);
}

static int b_set_bytes(lua_State *L)
{
    lua_co *co = alive(L, NULL);
    size_t n;
    const char *p = luaL_checklstring(L, 2, &n);
    pf_fbuf *b = pf_filter_buffer(co->fs->fc, co->dir);
    if (n > b->cap) {
        char *np = realloc(b->p, n);
        if (!np)
            return luaL_error(L, "out of memory");
        b->p = np;
        b->cap = n;
    }
    if (n)
        memcpy(b->p, p, n);
    b->n = n;
    /* the body changed size: so does content-length (Envoy) */
    pf_stream *s = stream_of(co);
    pf_hdrs *h = co->dir == PF_DECODE ? &s->req_hdrs : &s->resp_hdrs;
    if (pf_hdrs_get_lit(h, "content-length")) {
        char cl[24];
        int k = snprintf(cl, sizeof cl, "%zu", n);
        pf_str v;
        if (pf_arena_dup(&s->arena, &v, cl, (size_t)k) == 0) {
            pf_hdrs_remove_lit(h, "content-length");
            pf_hdrs_add(h, &s->arena, PF_STR("content-length"), v);
        }
    }
    return 0;
}

static lchunk *check_chunk(lua_State *L)
{
    lchunk *c = check_class(L, 1, lua_upvalueindex(1));
    if (!c)
        luaL_argerror(L, 1, "not a buffer (use ':' to call methods)");
    return c;
}

static int c_length(lua_State *L)
{
    lchunk *c = check_chunk(L);
    lua_pushinteger(L, (lua_Integer)c->n);
    return 1;
}

static int c_get_bytes(lua_State *L)
{
    lchunk *c = check_chunk(L);
    return get_bytes(L, c->data, c->n);
}

/* ---- stream info ---- */

static void push_addr(lua_State *L, const struct sockaddr_storage *ss)
{
    char buf[80];
    if (!ss) {
        lua_pushliteral(L, "");
        return;
    }
    size_t n = pf_addr_format(ss, true, buf, sizeof buf);
    lua_pushlstring(L, buf, n);
}

static pf_dconn *dconn_of(pf_stream *s)
{
    if (!s->downstream_remote || s->internal)
        return NULL;
    return (pf_dconn *)((char *)s->downstream_remote - offsetof(pf_dconn, peer));
}

static SSL *ssl_of(pf_stream *s)
{
    pf_dconn *dc = dconn_of(s);
    return dc && dc->sock.tls ? dc->sock.tls->ssl : NULL;
}

static int i_protocol(lua_State *L)
{
    pf_stream *s = stream_of(alive(L, NULL));
    lua_pushlstring(L, s->protocol.p ? s->protocol.p : "", s->protocol.n);
    return 1;
}

static int i_local(lua_State *L)
{
    push_addr(L, stream_of(alive(L, NULL))->downstream_local);
    return 1;
}

static int i_remote(lua_State *L)
{
    push_addr(L, stream_of(alive(L, NULL))->downstream_remote);
    return 1;
}

static int i_sni(lua_State *L)
{
    pf_dconn *dc = dconn_of(stream_of(alive(L, NULL)));
    const char *sni = dc && pf_sock_is_tls(&dc->sock) ? pf_sock_sni(&dc->sock) : NULL;
    lua_pushstring(L, sni ? sni : "");
    return 1;
}

static int i_route_name(lua_State *L)
{
    pf_stream *s = stream_of(alive(L, NULL));
    lua_pushstring(L, s->route && s->route->name ? s->route->name : "");
    return 1;
}

static int i_dynmeta(lua_State *L)
{
    lua_co *co = alive(L, NULL);
    push_obj(L, co, LMT_DYNMETA, 0);
    return 1;
}

static int i_ssl(lua_State *L)
{
    lua_co *co = alive(L, NULL);
    if (!ssl_of(stream_of(co))) {
        lua_pushnil(L);
        return 1;
    }
    push_obj(L, co, LMT_SSL, 0);
    return 1;
}

/* ---- dynamic metadata: store[stream] = {ns = {k = v}}, store at lw->dynmeta_ref ---- */

static void push_store(lua_State *L, lua_co *co, bool create)
{
    const void *key = stream_of(co);
    lua_rawgeti(L, LUA_REGISTRYINDEX, co->fs->lw->dynmeta_ref);
    lua_pushlightuserdata(L, (void *)key);
    lua_rawget(L, -2);
    if (lua_isnil(L, -1) && create) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushlightuserdata(L, (void *)key);
        lua_pushvalue(L, -2);
        lua_rawset(L, -4);
        co->fs->dynmeta = true;     /* cleared when the filter goes */
    }
    lua_remove(L, -2);
}

void pf_lua_dynmeta_clear(pf_lua_worker *lw, const void *key)
{
    lua_State *L = lw->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, lw->dynmeta_ref);
    lua_pushlightuserdata(L, (void *)key);
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

static int d_get(lua_State *L)
{
    lua_co *co = alive(L, NULL);
    luaL_checkstring(L, 2);
    push_store(L, co, false);
    if (lua_isnil(L, -1))
        return 1;
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    return 1;
}

static int d_set(lua_State *L)
{
    lua_co *co = alive(L, NULL);
    luaL_checkstring(L, 2);
    luaL_checkstring(L, 3);
    push_store(L, co, true);
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, 2);
        lua_pushvalue(L, -2);
        lua_rawset(L, -4);
    }
    lua_pushvalue(L, 3);
    lua_pushvalue(L, 4);
    lua_rawset(L, -3);
    return 0;
}

static int d_pairs(lua_State *L)
{
    lua_co *co = alive(L, NULL);
    push_store(L, co, false);
    return push_table_pairs(L);
}

/* ---- connection / ssl ---- */

static int conn_ssl(lua_State *L)
{
    lua_co *co = alive(L, NULL);
    if (!ssl_of(stream_of(co))) {
        lua_pushnil(L);
        return 1;
    }
    push_obj(L, co, LMT_SSL, 0);
    return 1;
}

static SSL *check_ssl(lua_State *L)
{
    SSL *ssl = ssl_of(stream_of(alive(L, NULL)));
    if (!ssl)
        luaL_error(L, "object used outside of proper scope");
    return ssl;
}

static int s_peer_presented(lua_State *L)
{
    X509 *x = SSL_get0_peer_certificate(check_ssl(L));
    lua_pushboolean(L, x != NULL);
    return 1;
}

static int s_peer_validated(lua_State *L)
{
    SSL *ssl = check_ssl(L);
    lua_pushboolean(L, SSL_get0_peer_certificate(ssl) && SSL_get_verify_result(ssl) == X509_V_OK);
    return 1;
}

static int s_sha256(lua_State *L)
{
    X509 *x = SSL_get0_peer_certificate(check_ssl(L));
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!x || !X509_digest(x, EVP_sha256(), md, &n)) {
        lua_pushliteral(L, "");
        return 1;
    }
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    for (unsigned i = 0; i < n; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    lua_pushlstring(L, hex, 2 * n);
    return 1;
}

static int push_name(lua_State *L, X509_NAME *nm)
{
    char buf[512] = "";
    if (nm) {
        BIO *b = BIO_new(BIO_s_mem());
        if (b) {
            X509_NAME_print_ex(b, nm, 0, XN_FLAG_RFC2253);
            int k = BIO_read(b, buf, sizeof buf - 1);
            buf[k > 0 ? k : 0] = '\0';
            BIO_free(b);
        }
    }
    lua_pushstring(L, buf);
    return 1;
}

static int s_subject(lua_State *L)
{
    X509 *x = SSL_get0_peer_certificate(check_ssl(L));
    return push_name(L, x ? X509_get_subject_name(x) : NULL);
}

static int s_issuer(lua_State *L)
{
    X509 *x = SSL_get0_peer_certificate(check_ssl(L));
    return push_name(L, x ? X509_get_issuer_name(x) : NULL);
}

static int s_version(lua_State *L)
{
    lua_pushstring(L, SSL_get_version(check_ssl(L)));
    return 1;
}

static int s_cipher(lua_State *L)
{
    const SSL_CIPHER *c = SSL_get_current_cipher(check_ssl(L));
    lua_pushstring(L, c ? SSL_CIPHER_get_name(c) : "");
    return 1;
}

static int s_session_id(lua_State *L)
{
    SSL_SESSION *ss = SSL_get_session(check_ssl(L));
    unsigned int n = 0;
    const unsigned char *id = ss ? SSL_SESSION_get_id(ss, &n) : NULL;
    char hex[2 * SSL_MAX_SSL_SESSION_ID_LENGTH + 1] = "";
    for (unsigned i = 0; id && i < n; i++)
        snprintf(hex + 2 * i, 3, "%02x", id[i]);
    lua_pushstring(L, hex);
    return 1;
}

/* ---- metadata: the route's filter_metadata entry, as a Lua table kept in
 * the object's environment ---- */

static bool plain_is(const yn_node *n, const char *a, const char *b, const char *c)
{
    return !strcmp(n->str, a) || !strcmp(n->str, b) || !strcmp(n->str, c);
}

/* Pushes a YAML value the way Envoy maps a protobuf Struct value: null ->
 * nil, bool, number, string, list -> array, struct -> table. */
static void push_yaml(lua_State *L, const yn_node *n)
{
    luaL_checkstack(L, 4, "metadata too deep");
    if (n->kind == YN_SCALAR) {
        if (n->plain) {
            char *end;
            double d;
            if (yn_is_null(n)) {
                lua_pushnil(L);
                return;
            }
            if (plain_is(n, "true", "True", "TRUE") || plain_is(n, "false", "False", "FALSE")) {
                lua_pushboolean(L, n->str[0] == 't' || n->str[0] == 'T');
                return;
            }
            d = strtod(n->str, &end);
            if (end != n->str && *end == '\0') {
                lua_pushnumber(L, d);
                return;
            }
        }
        lua_pushlstring(L, n->str, n->len);
        return;
    }
    lua_createtable(L, n->kind == YN_SEQ ? (int)n->n : 0, n->kind == YN_MAP ? (int)n->n : 0);
    for (size_t i = 0; i < n->n; i++) {
        if (n->kind == YN_MAP)
            lua_pushlstring(L, n->keys[i]->str, n->keys[i]->len);
        else
            lua_pushinteger(L, (lua_Integer)i + 1);
        push_yaml(L, n->items[i]);
        lua_rawset(L, -3);
    }
}

static int m_get(lua_State *L)
{
    alive(L, NULL);
    luaL_checkany(L, 2);
    lua_getfenv(L, 1);
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    return 1;
}

static int m_pairs(lua_State *L)
{
    alive(L, NULL);
    lua_getfenv(L, 1);
    return push_table_pairs(L);
}

/* ---- handle ---- */

static int l_headers(lua_State *L)
{
    lua_co *co = alive(L, NULL);
    pf_lua_push_headers(L, co, 0);
    return 1;
}

static int l_body(lua_State *L)
{
    lua_co *co = alive(L, NULL);
    co->always_wrap = lua_toboolean(L, 2);
    if (co->fs->end_seen[co->dir]) {
        pf_lua_push_body(L, co);
        return 1;
    }
    co->state = CO_WAIT_BODY;
    return lua_yield(L, 0);
}

static int chunk_iter(lua_State *L)
{
    lobj *o = lua_touserdata(L, lua_upvalueindex(1));
    if (o->gen != o->slot->gen || !o->slot->co)
        return luaL_error(L, "object used outside of proper scope");
    lua_co *co = o->slot->co;
    if (co->fs->end_seen[co->dir]) {
        lua_pushnil(L);
        return 1;
    }
    co->state = CO_WAIT_CHUNK;
    return lua_yield(L, 0);
}

static int l_body_chunks(lua_State *L)
{
    alive(L, NULL);
    lua_pushvalue(L, 1);
    lua_pushcclosure(L, chunk_iter, 1);
    return 1;
}

static int l_trailers(lua_State *L)
{
    lua_co *co = alive(L, NULL);
    if (co->fs->end_seen[co->dir]) {
        pf_stream *s = stream_of(co);
        const pf_hdrs *t = co->dir == PF_DECODE ? &s->req_trailers : &s->resp_trailers;
        if (co->fs->trailers_seen[co->dir] && t->n)
            pf_lua_push_headers(L, co, 1);
        else
            lua_pushnil(L);
        return 1;
    }
    co->state = CO_WAIT_TRAILERS;
    return lua_yield(L, 0);
}

/* Envoy: the entry under the filter's configured name, else under its
 * canonical name. */
static int l_metadata(lua_State *L)
{
    lua_co *co = alive(L, NULL);
    const cfg_route *r = stream_of(co)->route;
    const yn_node *fm = r ? r->filter_metadata : NULL;
    const yn_node *e = cfg_metadata_entry(fm, co->fs->cfg->name);
    if (!e)
        e = cfg_metadata_entry(fm, "envoy.filters.http.lua");
    push_obj(L, co, LMT_META, 0);
    if (e)
        push_yaml(L, e);
    else
        lua_newtable(L);
    lua_setfenv(L, -2);
    return 1;
}

static int l_stream_info(lua_State *L)
{
    lua_co *co = alive(L, NULL);
    push_obj(L, co, LMT_INFO, 0);
    return 1;
}

static int l_connection(lua_State *L)
{
    lua_co *co = alive(L, NULL);
    push_obj(L, co, LMT_CONN, 0);
    return 1;
}

static int l_log(lua_State *L, int level)
{
    alive(L, NULL);
    const char *m = luaL_checkstring(L, 2);
    pf_log(level, "lua: script log: %s", m);
    return 0;
}

static int l_trace(lua_State *L) { return l_log(L, PF_LOG_TRACE); }
static int l_debug(lua_State *L) { return l_log(L, PF_LOG_DEBUG); }
static int l_info(lua_State *L) { return l_log(L, PF_LOG_INFO); }
static int l_warn(lua_State *L) { return l_log(L, PF_LOG_WARNING); }
static int l_err(lua_State *L) { return l_log(L, PF_LOG_ERROR); }
static int l_critical(lua_State *L) { return l_log(L, PF_LOG_CRITICAL); }

static int l_respond(lua_State *L)
{
    lua_co *co = alive(L, NULL);
    if (co->dir != PF_DECODE)
        return luaL_error(L, "respond not currently supported in the response path");
    if (co->hdrs_passed)
        return luaL_error(L, "respond() cannot be called if headers have been continued");
    luaL_checktype(L, 2, LUA_TTABLE);
    size_t bn = 0;
    const char *body = lua_isnoneornil(L, 3) ? NULL : luaL_checklstring(L, 3, &bn);
    pf_stream *s = stream_of(co);
    lua_getfield(L, 2, ":status");
    const char *st = lua_tostring(L, -1);
    int status = st ? atoi(st) : 0;
    lua_pop(L, 1);
    if (status < 200 || status > 999)
        return luaL_error(L, ":status must be between 200-999");
    s->resp_hdrs = (pf_hdrs){ 0 };
    s->status = status;
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        size_t kn, vn;
        if (lua_type(L, -2) == LUA_TSTRING && lua_tostring(L, -2)[0] != ':') {
            const char *k = lua_tolstring(L, -2, &kn);
            const char *v = lua_tolstring(L, -1, &vn);
            pf_str name, val;
            if (v) {
                lower_dup(L, s, k, kn, &name);
                if (pf_arena_dup(&s->arena, &val, v, vn) == 0)
                    pf_hdrs_add(&s->resp_hdrs, &s->arena, name, val);
            }
        }
        lua_pop(L, 1);
    }
    free(co->reply_body);
    co->reply_body = NULL;
    co->reply_len = 0;
    if (bn) {
        if (!(co->reply_body = malloc(bn)))
            return luaL_error(L, "out of memory");
        memcpy(co->reply_body, body, bn);
        co->reply_len = bn;
    }
    co->state = CO_RESPOND;
    return lua_yield(L, 0);
}

static int l_http_call(lua_State *L)
{
    lua_co *co = alive(L, NULL);
    return pf_lua_http_call(L, co);
}

static int l_timestamp(lua_State *L)
{
    alive(L, NULL);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    lua_pushnumber(L, (lua_Number)tv.tv_sec * 1000 + tv.tv_usec / 1000);
    return 1;
}

static int l_base64(lua_State *L)
{
    alive(L, NULL);
    size_t n;
    const unsigned char *p = (const unsigned char *)luaL_checklstring(L, 2, &n);
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        luaL_addchar(&b, tbl[v >> 18 & 63]);
        luaL_addchar(&b, tbl[v >> 12 & 63]);
        luaL_addchar(&b, i + 1 < n ? tbl[v >> 6 & 63] : '=');
        luaL_addchar(&b, i + 2 < n ? tbl[v & 63] : '=');
    }
    luaL_pushresult(&b);
    return 1;
}

/* pilotfish extension, not an Envoy method (filters/lua/lua_pilotfish.c) */
static int l_pilotfish(lua_State *L)
{
    lua_co *co = alive(L, NULL);
    return pf_lua_push_pilotfish(L, co->fs->lw->w);
}

static int l_clear_route_cache(lua_State *L)
{
    lua_co *co = alive(L, NULL);
    pf_filter_clear_route_cache(co->fs->fc);
    return 0;
}

/* ---- registration ---- */

/* Creates a class metatable (registry ref in lw->mt[k]): methods, __pairs
 * and __len are closures over the metatable (see alive()). */
void pf_lua_new_class(pf_lua_worker *lw, enum lua_mt k, const luaL_Reg *methods,
                      lua_CFunction pairs, lua_CFunction len)
{
    lua_State *L = lw->L;
    lua_newtable(L);                /* the metatable */
    lua_newtable(L);                /* its __index */
    lua_pushvalue(L, -2);
    luaL_openlib(L, NULL, methods, 1);
    lua_setfield(L, -2, "__index");
    if (pairs) {
        lua_pushvalue(L, -1);
        lua_pushcclosure(L, pairs, 1);
        lua_setfield(L, -2, "__pairs");
    }
    if (len) {
        lua_pushvalue(L, -1);
        lua_pushcclosure(L, len, 1);
        lua_setfield(L, -2, "__len");
    }
    lw->mt[k] = luaL_ref(L, LUA_REGISTRYINDEX);
}

/* LuaJIT without 5.2 compat ignores __pairs: honour it in pairs(). */
static const char pairs_shim[] =
    "local rawpairs = pairs\n"
    "pairs = function(t)\n"
    "  local mt = getmetatable(t)\n"
    "  if type(mt) == 'table' and mt.__pairs then return mt.__pairs(t) end\n"
    "  return rawpairs(t)\n"
    "end\n";

void pf_lua_api_register(pf_lua_worker *lw)
{
    lua_State *L = lw->L;
    static const luaL_Reg handle[] = {
        {"headers", l_headers}, {"body", l_body}, {"bodyChunks", l_body_chunks},
        {"trailers", l_trailers}, {"metadata", l_metadata}, {"streamInfo", l_stream_info},
        {"connection", l_connection}, {"logTrace", l_trace}, {"logDebug", l_debug},
        {"logInfo", l_info}, {"logWarn", l_warn}, {"logErr", l_err},
        {"logCritical", l_critical}, {"respond", l_respond}, {"httpCall", l_http_call},
        {"timestamp", l_timestamp}, {"base64Escape", l_base64},
        {"clearRouteCache", l_clear_route_cache},
        {"pilotfish", l_pilotfish},     /* pilotfish extension */
        {NULL, NULL}};
    static const luaL_Reg headers[] = {
        {"get", h_get}, {"getAtIndex", h_get_at}, {"getNumValues", h_num_values},
        {"add", h_add}, {"replace", h_replace}, {"remove", h_remove},
        {"setHttp1ReasonPhrase", h_reason}, {NULL, NULL}};
    static const luaL_Reg buffer[] = {
        {"length", b_length}, {"getBytes", b_get_bytes}, {"setBytes", b_set_bytes},
        {NULL, NULL}};
    static const luaL_Reg chunk[] = {{"length", c_length}, {"getBytes", c_get_bytes},
                                     {NULL, NULL}};
    static const luaL_Reg info[] = {
        {"protocol", i_protocol}, {"downstreamLocalAddress", i_local},
        {"downstreamDirectRemoteAddress", i_remote}, {"downstreamRemoteAddress", i_remote},
        {"requestedServerName", i_sni}, {"routeName", i_route_name},
        {"dynamicMetadata", i_dynmeta}, {"downstreamSslConnection", i_ssl}, {NULL, NULL}};
    static const luaL_Reg dyn[] = {{"get", d_get}, {"set", d_set}, {NULL, NULL}};
    static const luaL_Reg conn[] = {{"ssl", conn_ssl}, {NULL, NULL}};
    static const luaL_Reg ssl[] = {
        {"peerCertificatePresented", s_peer_presented},
        {"peerCertificateValidated", s_peer_validated},
        {"sha256PeerCertificateDigest", s_sha256}, {"subjectPeerCertificate", s_subject},
        {"issuerPeerCertificate", s_issuer}, {"tlsVersion", s_version},
        {"ciphersuiteString", s_cipher}, {"sessionId", s_session_id}, {NULL, NULL}};
    static const luaL_Reg meta[] = {{"get", m_get}, {NULL, NULL}};
    pf_lua_new_class(lw, LMT_HANDLE, handle, NULL, NULL);
    pf_lua_new_class(lw, LMT_HEADERS, headers, h_pairs, NULL);
    pf_lua_new_class(lw, LMT_BUFFER, buffer, NULL, b_length);
    pf_lua_new_class(lw, LMT_CHUNK, chunk, NULL, c_length);
    pf_lua_new_class(lw, LMT_INFO, info, NULL, NULL);
    pf_lua_new_class(lw, LMT_DYNMETA, dyn, d_pairs, NULL);
    pf_lua_new_class(lw, LMT_CONN, conn, NULL, NULL);
    pf_lua_new_class(lw, LMT_SSL, ssl, NULL, NULL);
    pf_lua_new_class(lw, LMT_META, meta, m_pairs, NULL);
    lua_newtable(L);
    lw->dynmeta_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (luaL_loadstring(L, pairs_shim) == 0)
        lua_pcall(L, 0, 0, 0);
    else
        lua_pop(L, 1);
}
