/*
 * sockaddr.h - slot addresses as socket addresses, for the code that opens
 * sockets (the quorum agent, the server, the client).  Apart from codec.h
 * so that code without sockets never reaches <sys/socket.h>.
 */
#ifndef FUSEFS_SOCKADDR_H
#define FUSEFS_SOCKADDR_H

#include <sys/socket.h>

#include "blockdev/format.h"

int bd_addr_to_sockaddr(const struct bd_addr *a, struct sockaddr_storage *ss, socklen_t *len);
void bd_addr_from_sockaddr(const struct sockaddr_storage *ss, struct bd_addr *a);

#endif
