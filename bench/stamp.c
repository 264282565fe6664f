/* The executable task of the lateness benchmark (bench/lateness.py): its first action
 * records the wall-clock time it was exec'd, then it appends one line
 * "<seconds since the epoch> <tag>\n" to the file named by $STAMP_FILE. The tag is
 * $TASKOPS_JOB_ID under taskops, else $STAMP_SLOT (set by the peers), else "-".
 * One write(2) on an O_APPEND file, so lines of concurrent runs never interleave.
 * Built with gcc into a temporary folder when the benchmark runs. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(void) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    const char *path = getenv("STAMP_FILE");
    if (path == NULL || *path == '\0') {
        return 2;
    }
    const char *tag = getenv("TASKOPS_JOB_ID");
    if (tag == NULL || *tag == '\0') {
        tag = getenv("STAMP_SLOT");
    }
    if (tag == NULL || *tag == '\0') {
        tag = "-";
    }
    char line[160];
    int length = snprintf(line, sizeof line, "%lld.%09ld %s\n", (long long)now.tv_sec,
                          now.tv_nsec, tag);
    if (length <= 0 || length >= (int)sizeof line) {
        return 3;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) {
        return 4;
    }
    ssize_t written = write(fd, line, (size_t)length);
    close(fd);
    return written == length ? 0 : 5;
}
