/* One reader for two kinds of stream, so their figures compare: raw TCP
 * (count the bytes) and one seatkeeper session (upgrade, hello, then parse
 * frames just enough to find each slice's seq and send one cumulative ack
 * per read). Skips the first 200 ms, counts for SECONDS, prints bytes/s of
 * everything read off the socket, then all bytes read (warm-up included).
 *
 *   reader raw HOST PORT SECONDS
 *   reader ws  HOST PORT SECONDS
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF (1 << 20)

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void send_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k <= 0) { perror("write"); exit(1); }
        p += k; n -= (size_t)k;
    }
}

/* A masked client text frame (mask 0: the payload goes as is). */
static void send_text(int fd, const char *s) {
    char f[256];
    size_t n = strlen(s);
    f[0] = (char)0x81; f[1] = (char)(0x80 | n);
    memset(f + 2, 0, 4);
    memcpy(f + 6, s, n);
    send_all(fd, f, n + 6);
}

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: reader raw|ws HOST PORT SECONDS\n"); return 2; }
    int ws = strcmp(argv[1], "ws") == 0;
    double seconds = atof(argv[4]);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[3]))};
    inet_pton(AF_INET, argv[2], &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) { perror("connect"); return 1; }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    static unsigned char buf[BUF];
    size_t have = 0;
    if (ws) {
        char req[512];
        snprintf(req, sizeof req,
                 "GET /ws HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                 argv[2], argv[3]);
        send_all(fd, req, strlen(req));
        for (;;) {
            ssize_t k = read(fd, buf + have, BUF - have);
            if (k <= 0) { fprintf(stderr, "no upgrade\n"); return 1; }
            have += (size_t)k;
            unsigned char *end = memmem(buf, have, "\r\n\r\n", 4);
            if (end) {
                size_t h = (size_t)(end + 4 - buf);
                memmove(buf, buf + h, have - h);
                have -= h;
                break;
            }
        }
        send_text(fd, "{\"type\":\"hello\"}");
    }
    uint64_t skip = 0, max_seq = 0, acked = 0, total = 0, all = 0;
    double start = now(), t0 = start + 0.2, end = t0 + seconds;
    int counting = 0;
    for (;;) {
        ssize_t k = read(fd, buf + have, BUF - have);
        if (k <= 0) { fprintf(stderr, "stream ended\n"); return 1; }
        double t = now();
        if (!counting && t >= t0) { counting = 1; total = 0; t0 = t; end = t0 + seconds; }
        total += (uint64_t)k;
        all += (uint64_t)k;
        if (t >= end) break;
        if (!ws) continue;
        have += (size_t)k;
        size_t pos = 0;
        for (;;) {
            if (skip) {
                uint64_t n = have - pos < skip ? have - pos : skip;
                skip -= n; pos += n;
                if (skip) break;
            }
            size_t avail = have - pos;
            if (avail < 2) break;
            unsigned char *f = buf + pos;
            unsigned len7 = f[1] & 0x7f;
            size_t hl = len7 == 126 ? 4 : len7 == 127 ? 10 : 2;
            if (avail < hl) break;
            uint64_t len = len7;
            if (len7 == 126) len = (uint64_t)f[2] << 8 | f[3];
            if (len7 == 127) { len = 0; for (int i = 2; i < 10; i++) len = len << 8 | f[i]; }
            if ((f[0] & 0x0f) == 2) {
                if (avail < hl + 20) break;
                uint64_t seq;
                memcpy(&seq, f + hl + 4, 8); /* little-endian, as x86 */
                if (seq > max_seq) max_seq = seq;
            }
            pos += hl;
            skip = len;
        }
        memmove(buf, buf + pos, have - pos);
        have -= pos;
        if (max_seq > acked) {
            char ack[64];
            snprintf(ack, sizeof ack, "{\"type\":\"ack\",\"seq\":%llu}", (unsigned long long)max_seq);
            send_text(fd, ack);
            acked = max_seq;
        }
    }
    printf("%.0f %llu\n", total / (now() - t0), (unsigned long long)all);
    return 0;
}
