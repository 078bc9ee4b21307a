/* HTTP/1.1 downstream codec on llhttp (server side).
 *
 * One active stream per connection; pipelined requests wait, unparsed, in
 * the connection until the previous response has ended. */
#ifndef PF_H1_SERVER_H
#define PF_H1_SERVER_H

#include <uv.h>

struct pf_worker;
struct pf_listener_rt;

/* Accepts one connection from the listener; errors are logged and dropped. */
void h1_server_accept(struct pf_listener_rt *l);
/* Drain: closes the connection now if idle, else after its current response. */
void h1_server_drain_all(struct pf_worker *w);
/* Forcibly closes every downstream connection of the worker. */
void h1_server_close_all(struct pf_worker *w);

#endif
