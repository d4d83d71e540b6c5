/* files.h - the console's files (the console/ folder), compiled in by cmake/embed_console.cmake. */
#ifndef DB_CONSOLE_FILES_H
#define DB_CONSOLE_FILES_H

#include <stddef.h>

struct db_console_file {
    const char *name;          /* "index.html", "app.js", ...; NULL ends the table */
    const unsigned char *data; /* the file's bytes (static storage) */
    size_t len;
};

extern const struct db_console_file db_console_files[];

#endif
