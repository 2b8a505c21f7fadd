/*
 * docs.c
 *		GET /docs: Swagger UI on /openapi.json, as FastAPI gave the old
 *		service's testers, to try calls by hand.
 *
 * The page itself is ours (below); Swagger UI's script and style come from
 * the npm package swagger-ui-dist, which scripts/deps.sh installs into
 * shim/docs/node_modules at set-up.  They are read once at start-up from
 * --docs-dir (default: docs/node_modules/swagger-ui-dist beside the
 * binary), gzipped once, and served from memory: nothing is fetched from
 * the internet, then or later.  Without them the API works as ever and
 * /docs answers 503, saying what to install.
 */
#include "shim.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Relative links: the page works under a path prefix too. */
static const char index_html[] =
	"<!DOCTYPE html>\n"
	"<html lang=\"en\">\n"
	"<head>\n"
	"<meta charset=\"utf-8\">\n"
	"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	"<title>PSK API</title>\n"
	"<link rel=\"stylesheet\" href=\"docs/swagger-ui.css\">\n"
	"</head>\n"
	"<body>\n"
	"<div id=\"swagger-ui\"></div>\n"
	"<script src=\"docs/swagger-ui-bundle.js\"></script>\n"
	"<script>\n"
	"window.ui = SwaggerUIBundle({\n"
	"  url: \"openapi.json\",\n"
	"  dom_id: \"#swagger-ui\",\n"
	"  deepLinking: true,\n"
	"  persistAuthorization: true\n"
	"});\n"
	"</script>\n"
	"</body>\n"
	"</html>\n";

static DocFile files[] = {
	{ "", "text/html; charset=utf-8", { NULL, 0 }, { NULL, 0 } },
	{ "swagger-ui.css", "text/css; charset=utf-8", { NULL, 0 }, { NULL, 0 } },
	{ "swagger-ui-bundle.js",
	  "text/javascript; charset=utf-8",
	  { NULL, 0 },
	  { NULL, 0 } },
};

#define NFILES (sizeof(files) / sizeof(files[0]))

static char *
read_file(const char *path, size_t *len)
{
	FILE	   *f = fopen(path, "rb");
	struct stat st;
	char	   *data;

	if (f == NULL)
		return NULL;
	if (fstat(fileno(f), &st) != 0 || st.st_size <= 0 ||
		st.st_size > 64L * 1024 * 1024)
	{
		fclose(f);
		errno = EINVAL;
		return NULL;
	}
	data = malloc(st.st_size);
	if (data == NULL || fread(data, 1, st.st_size, f) != (size_t) st.st_size)
	{
		free(data);
		fclose(f);
		errno = EIO;
		return NULL;
	}
	fclose(f);
	*len = st.st_size;
	return data;
}

/* <directory of /proc/self/exe>/docs/node_modules/swagger-ui-dist */
static const char *
default_dir(void)
{
	static char dir[PATH_MAX];
	ssize_t		n = readlink("/proc/self/exe", dir, sizeof(dir) - 64);
	char	   *slash;

	if (n <= 0)
		return "docs/node_modules/swagger-ui-dist";
	dir[n] = '\0';
	slash = strrchr(dir, '/');
	strcpy(slash ? slash + 1 : dir, "docs/node_modules/swagger-ui-dist");
	return dir;
}

void
docs_load(const char *dir)
{
	if (dir == NULL || dir[0] == '\0')
		dir = default_dir();
	files[0].body = h2o_iovec_init(index_html, sizeof(index_html) - 1);
	for (size_t i = 1; i < NFILES; i++)
	{
		char   path[PATH_MAX + 64];
		size_t len = 0;
		char  *data;

		snprintf(path, sizeof(path), "%.*s/%s", PATH_MAX, dir, files[i].name);
		if ((data = read_file(path, &len)) == NULL)
		{
			shim_log("GET /docs: cannot read %s (%m): /docs answers 503; "
					 "scripts/deps.sh installs swagger-ui-dist, or pass "
					 "--docs-dir",
					 path);
			for (size_t k = 0; k < NFILES; k++)
				files[k].body = h2o_iovec_init(NULL, 0);
			return;
		}
		files[i].body = h2o_iovec_init(data, len);
	}
	for (size_t i = 0; i < NFILES; i++)
		files[i].gzipped =
			compress_gzip_static(files[i].body.base, files[i].body.len);
}

/*
 * The file of GET /docs (name empty) or /docs/{name}; NULL when there is
 * no such file.  A file with no body: the docs are not installed.
 */
const DocFile *
docs_find(h2o_iovec_t name)
{
	for (size_t i = 0; i < NFILES; i++)
		if (h2o_memis(name.base, name.len, files[i].name,
					  strlen(files[i].name)))
			return &files[i];
	return NULL;
}
