/* HTTP/1.1 downstream codec on llhttp (server side).
 *
 * One active stream per connection; pipelined requests wait, unparsed, in
 * the connection until the previous response has ended. */
#ifndef PF_H1_SERVER_H
#define PF_H1_SERVER_H

#include "proxy/downstream.h"

extern const pf_codec_vtbl h1_server_codec;

#endif
