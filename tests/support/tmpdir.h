/*
 * Removing a test's temporary directory tree (what `rm -rf` does), for the
 * suites that make one with mkdtemp. No Criterion dependency.
 */
#ifndef ZOS_TEST_TMPDIR_H
#define ZOS_TEST_TMPDIR_H

/*
 * Removes PATH and everything below it, without following symbolic links.
 * Returns 0, or -1 (errno set) when something could not be removed. An
 * empty PATH is a no-op that returns 0.
 */
int test_tmpdir_remove(const char *path);

#endif /* ZOS_TEST_TMPDIR_H */
