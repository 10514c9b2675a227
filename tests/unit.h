/*
 * unit.h - the Check unit test runner's shared pieces: one suite per
 * module, and helpers for temporary files that support O_DIRECT.
 */
#ifndef FUSEFS_TESTS_UNIT_H
#define FUSEFS_TESTS_UNIT_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>

Suite *suite_blockdev(void);
Suite *suite_dev(void);
Suite *suite_store(void);
Suite *suite_proto(void);
Suite *suite_quorum_msg(void);
Suite *suite_election(void);
Suite *suite_fence(void);
Suite *suite_glue(void);
Suite *suite_agent(void);
Suite *suite_mount(void);
Suite *suite_fs(void);
Suite *suite_service(void);

/*
 * A fresh directory for test files on a filesystem that takes O_DIRECT
 * (tmpfs may not), or NULL with the reason printed: callers then skip.
 * The directory and everything in it is removed by test_tmpdir_remove().
 */
const char *test_tmpdir(void);
void test_tmpdir_remove(void);
/* Make a file of size bytes in the temp dir; returns its path (static). */
const char *test_make_file(const char *name, size_t size);

#endif
