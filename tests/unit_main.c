/*
 * unit_main.c - runs every Check suite.  CK_RUN_SUITE=name selects one.
 */
#include "tests/unit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[PATH_MAX];
static bool tmpdir_tried;
static bool tmpdir_ok;

/* Does this directory's filesystem accept O_DIRECT opens? */
static bool dir_takes_odirect(const char *dir)
{
	char path[PATH_MAX + 32];
	int fd;

	snprintf(path, sizeof(path), "%s/.odirect-probe", dir);
	fd = open(path, O_RDWR | O_CREAT | O_DIRECT, 0600);
	if (fd < 0)
		return false;
	close(fd);
	unlink(path);
	return true;
}

const char *test_tmpdir(void)
{
	static const char *const bases[] = { "/var/tmp", "/tmp", "." };

	if (tmpdir_tried)
		return tmpdir_ok ? tmpdir : NULL;
	tmpdir_tried = true;
	if (getenv("FUSEFS_TEST_DIR") != NULL) {
		snprintf(tmpdir, sizeof(tmpdir), "%s/fusefs-unit.XXXXXX", getenv("FUSEFS_TEST_DIR"));
		tmpdir_ok = mkdtemp(tmpdir) != NULL && dir_takes_odirect(tmpdir);
	}
	for (size_t i = 0; !tmpdir_ok && i < sizeof(bases) / sizeof(bases[0]); i++) {
		snprintf(tmpdir, sizeof(tmpdir), "%s/fusefs-unit.XXXXXX", bases[i]);
		if (mkdtemp(tmpdir) == NULL)
			continue;
		tmpdir_ok = dir_takes_odirect(tmpdir);
		if (!tmpdir_ok)
			rmdir(tmpdir);
	}
	if (!tmpdir_ok)
		fprintf(stderr, "SKIP: no directory here supports O_DIRECT (tried FUSEFS_TEST_DIR, "
			"/var/tmp, /tmp, .); device I/O tests skipped\n");
	return tmpdir_ok ? tmpdir : NULL;
}

const char *test_make_file(const char *name, size_t size)
{
	static char path[PATH_MAX + 256];
	int fd;

	if (test_tmpdir() == NULL)
		return NULL;
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	unlink(path);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	close(fd);
	return path;
}

void test_tmpdir_remove(void)
{
	char cmd[PATH_MAX + 16];

	if (!tmpdir_ok)
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "warning: could not remove %s\n", tmpdir);
}

int main(void)
{
	Suite *(*const suites[])(void) = {
		suite_blockdev,
		suite_dev,
		suite_store,
		suite_proto,
		suite_quorum_msg,
		suite_election,
		suite_fence,
		suite_glue,
		suite_agent,
		suite_mount,
		suite_fs,
		suite_service,
	};
	SRunner *sr = NULL;
	int failed;

	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
		Suite *s;

		/*
		 * valgrind runs one thread at a time and takes io_uring_enter for a
		 * call that does not block, so the agent's thread waiting on its ring
		 * holds up every other; the agent suite runs under ASan instead.
		 */
		if (suites[i] == suite_agent && getenv("FUSEFS_VALGRIND") != NULL) {
			fprintf(stderr, "unit: the agent suite is left out under valgrind (its thread "
					"waits in io_uring_enter, which valgrind serializes); make asan "
					"runs it\n");
			continue;
		}
		s = suites[i]();

		if (sr == NULL)
			sr = srunner_create(s);
		else
			srunner_add_suite(sr, s);
	}
	test_tmpdir(); /* made once here, so forked tests share it */
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	test_tmpdir_remove();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
