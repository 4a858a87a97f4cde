#include "tmpdir.h"

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

/* nftw callback: removes one file or (emptied, FTW_DEPTH) directory. */
static int
tmpdir_remove_entry(
    const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void) st;
	(void) flag;
	(void) ftw;
	return remove(path);
}

int
test_tmpdir_remove(const char *path)
{
	if (path[0] == '\0') {
		return 0;
	}
	return nftw(path, tmpdir_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}
