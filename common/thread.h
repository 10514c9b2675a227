/*
 * thread.h - starting helper threads.
 */
#ifndef FUSEFS_THREAD_H
#define FUSEFS_THREAD_H

#include <pthread.h>

/*
 * Start a helper thread with SIGINT, SIGTERM, SIGHUP and SIGPIPE blocked:
 * those belong to the main thread (libfuse's handlers).  0 or -errno.
 */
int thread_start(pthread_t *t, void *(*fn)(void *), void *arg);

#endif
