#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("deskbridge %s\n", DB_VERSION);
        return 0;
    }
    fprintf(stderr, "deskbridge: not yet wired\n");
    return 1;
}
