/* Network probe for the defender's network-policy tests: each mode makes the exact syscalls a
 * resolver or client makes and prints one line of results ("ok N" / "err ERRNO_NAME").
 * Compiled by the tests with the system C compiler. Loopback addresses only. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#ifndef MSG_FASTOPEN
#define MSG_FASTOPEN 0x20000000
#endif

static void result(long r) {
    if (r < 0) printf("err %s\n", strerrorname_np(errno));
    else printf("ok %ld\n", r);
    fflush(stdout);
}

/* "127.0.0.1" / "::1" / "::ffff:127.0.0.1" with a port → sockaddr_storage. */
static socklen_t addr(const char *host, int port, struct sockaddr_storage *ss) {
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        return sizeof *a4;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        return sizeof *a6;
    }
    fprintf(stderr, "bad address %s\n", host);
    exit(2);
}

/* A DNS query for NAME, type A, id 0x4242. */
static int dns_query(const char *name, unsigned char *out) {
    unsigned char *p = out;
    const unsigned char hdr[12] = {0x42, 0x42, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
    memcpy(p, hdr, 12);
    p += 12;
    const char *s = name;
    while (*s) {
        const char *dot = strchr(s, '.');
        size_t n = dot ? (size_t)(dot - s) : strlen(s);
        *p++ = (unsigned char)n;
        memcpy(p, s, n);
        p += n;
        s += n;
        if (*s == '.') s++;
    }
    *p++ = 0;
    *p++ = 0; *p++ = 1; /* A */
    *p++ = 0; *p++ = 1; /* IN */
    return (int)(p - out);
}

static int sock_for(const char *host, int type) {
    struct sockaddr_storage ss;
    addr(host, 1, &ss);
    int s = socket(ss.ss_family, type, 0);
    struct timeval tv = {3, 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return s;
}

/* Prints the answer's rcode and answer count, or the receive error. */
static void dns_answer(int s, int tcp) {
    unsigned char buf[4096];
    ssize_t n = recv(s, buf, sizeof buf, 0);
    if (n < 0) { result(-1); return; }
    unsigned char *m = tcp ? buf + 2 : buf;
    if (n < (tcp ? 14 : 12)) { printf("short %zd\n", n); return; }
    printf("rcode %d answers %d\n", m[3] & 0xf, (m[6] << 8) | m[7]);
}

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

struct race { struct sockaddr_in *target; struct sockaddr_in a, b; volatile int stop; };

static void *flipper(void *arg) {
    struct race *r = arg;
    while (!r->stop) {
        memcpy(r->target, &r->b, sizeof r->b);
        memcpy(r->target, &r->a, sizeof r->a);
    }
    return NULL;
}

struct dns_race { unsigned char *buf, a[512], b[512]; int n; volatile int stop; };

static void *dns_flipper(void *arg) {
    struct dns_race *r = arg;
    while (!r->stop) {
        memcpy(r->buf, r->b, r->n);
        memcpy(r->buf, r->a, r->n);
    }
    return NULL;
}

static struct sockaddr_storage stall_addr;
static socklen_t stall_len;

static void *stalled_connect(void *arg) {
    (void)arg;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {3, 0};
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    connect(s, (struct sockaddr *)&stall_addr, stall_len);
    return NULL;
}

struct in_thread { int argc; char **argv; int rc; };

struct connector { int s; struct sockaddr_storage *ss; socklen_t len; int rc; };

static void *connect_and_exit(void *arg) {
    struct connector *c = arg;
    printf("tid %ld\n", (long)gettid());
    fflush(stdout);
    c->rc = connect(c->s, (struct sockaddr *)c->ss, c->len);
    return NULL;
}

int main(int argc, char **argv);

static void *run_in_thread(void *arg) {
    struct in_thread *t = arg;
    printf("tid %ld\n", (long)gettid());
    fflush(stdout);
    t->rc = main(t->argc, t->argv);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "thread")) { /* thread MODE ...: MODE from a second thread */
        printf("pid %ld\n", (long)getpid());
        struct in_thread t = {argc - 1, argv + 1, 0};
        pthread_t th;
        pthread_create(&th, NULL, run_in_thread, &t);
        pthread_join(th, NULL);
        return t.rc;
    }
    if (argc < 4) { fprintf(stderr, "usage: probe [thread] MODE HOST PORT [...]\n"); return 2; }
    const char *mode = argv[1], *host = argv[2];
    int port = atoi(argv[3]);
    struct sockaddr_storage ss;
    socklen_t len = addr(host, port, &ss);
    unsigned char q[512];

    if (!strcmp(mode, "connect")) {            /* TCP connect */
        int s = sock_for(host, SOCK_STREAM);
        result(connect(s, (struct sockaddr *)&ss, len));
    } else if (!strcmp(mode, "connect-nb")) {  /* non-blocking TCP connect */
        int s = sock_for(host, SOCK_STREAM | SOCK_NONBLOCK);
        result(connect(s, (struct sockaddr *)&ss, len));
    } else if (!strcmp(mode, "sendto")) {      /* UDP sendto a payload */
        int s = sock_for(host, SOCK_DGRAM);
        result(sendto(s, "hello", 5, 0, (struct sockaddr *)&ss, len));
    } else if (!strcmp(mode, "sendmsg")) {     /* UDP sendmsg with an address */
        int s = sock_for(host, SOCK_DGRAM);
        struct iovec iov[2] = {{"hel", 3}, {"lo", 2}};
        struct msghdr m = {.msg_name = &ss, .msg_namelen = len, .msg_iov = iov, .msg_iovlen = 2};
        result(sendmsg(s, &m, 0));
    } else if (!strcmp(mode, "sendmmsg")) {    /* two messages: HOST:PORT then HOST2:PORT2 */
        struct sockaddr_storage ss2;
        socklen_t len2 = addr(argv[4], atoi(argv[5]), &ss2);
        int s = sock_for(host, SOCK_DGRAM);
        struct iovec iov[2] = {{"first", 5}, {"second", 6}};
        struct mmsghdr mm[2];
        memset(mm, 0, sizeof mm);
        mm[0].msg_hdr = (struct msghdr){.msg_name = &ss, .msg_namelen = len, .msg_iov = &iov[0], .msg_iovlen = 1};
        mm[1].msg_hdr = (struct msghdr){.msg_name = &ss2, .msg_namelen = len2, .msg_iov = &iov[1], .msg_iovlen = 1};
        int r = sendmmsg(s, mm, 2, 0);
        if (r < 0) result(r);
        else printf("ok %d lens %u %u\n", r, mm[0].msg_len, mm[1].msg_len);
    } else if (!strcmp(mode, "fastopen")) {    /* TCP fast open: sendto with MSG_FASTOPEN */
        int s = sock_for(host, SOCK_STREAM);
        result(sendto(s, "tfo-data", 8, MSG_FASTOPEN, (struct sockaddr *)&ss, len));
    } else if (!strcmp(mode, "dns-sendto")) {  /* musl: unconnected UDP sendto the nameserver */
        int s = sock_for(host, SOCK_DGRAM);
        int n = dns_query(argv[4], q);
        long r = sendto(s, q, n, 0, (struct sockaddr *)&ss, len);
        if (r < 0) result(r); else dns_answer(s, 0);
    } else if (!strcmp(mode, "dns-connect-write")) { /* Go: connect a UDP socket, then write */
        int s = sock_for(host, SOCK_DGRAM);
        if (connect(s, (struct sockaddr *)&ss, len) < 0) { result(-1); return 0; }
        int n = dns_query(argv[4], q);
        if (write(s, q, n) < 0) { result(-1); return 0; }
        dns_answer(s, 0);
    } else if (!strcmp(mode, "dns-connect-send")) { /* glibc single question: connect, then send */
        int s = sock_for(host, SOCK_DGRAM);
        if (connect(s, (struct sockaddr *)&ss, len) < 0) { result(-1); return 0; }
        int n = dns_query(argv[4], q);
        if (send(s, q, n, 0) < 0) { result(-1); return 0; }
        dns_answer(s, 0);
    } else if (!strcmp(mode, "dns-thread-connect-send")) { /* a thread connects and exits; main sends */
        printf("pid %ld\n", (long)getpid());
        struct connector c = {sock_for(host, SOCK_DGRAM), &ss, len, 0};
        pthread_t th;
        pthread_create(&th, NULL, connect_and_exit, &c);
        pthread_join(th, NULL);
        if (c.rc < 0) { result(-1); return 0; }
        int n = dns_query(argv[4], q);
        if (send(c.s, q, n, 0) < 0) { result(-1); return 0; }
        dns_answer(c.s, 0);
    } else if (!strcmp(mode, "dns-tcp")) {     /* TCP: 2-byte length prefix */
        int s = sock_for(host, SOCK_STREAM);
        if (connect(s, (struct sockaddr *)&ss, len) < 0) { result(-1); return 0; }
        int n = dns_query(argv[4], q + 2);
        q[0] = n >> 8; q[1] = n & 0xff;
        if (write(s, q, n + 2) < 0) { result(-1); return 0; }
        dns_answer(s, 1);
    } else if (!strcmp(mode, "dns-tcp-nb")) {  /* Go's TCP fallback: non-blocking connect, poll */
        int s = sock_for(host, SOCK_STREAM | SOCK_NONBLOCK);
        int r = connect(s, (struct sockaddr *)&ss, len);
        if (r < 0 && errno != EINPROGRESS) { result(-1); return 0; }
        struct pollfd pfd = {.fd = s, .events = POLLOUT};
        poll(&pfd, 1, 3000);
        int err = 0;
        socklen_t elen = sizeof err;
        getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &elen);
        if (err) { errno = err; result(-1); return 0; }
        int n = dns_query(argv[4], q + 2);
        q[0] = n >> 8; q[1] = n & 0xff;
        if (write(s, q, n + 2) < 0) { result(-1); return 0; }
        pfd.events = POLLIN;
        poll(&pfd, 1, 3000);
        dns_answer(s, 1);
    } else if (!strcmp(mode, "sendmsg-mark")) { /* UDP sendmsg with an SO_MARK control message */
        int s = sock_for(host, SOCK_DGRAM);
        struct iovec iov = {"marked", 6};
        union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } ctl;
        memset(&ctl, 0, sizeof ctl);
        struct msghdr m = {.msg_name = &ss, .msg_namelen = len, .msg_iov = &iov, .msg_iovlen = 1,
                           .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SO_MARK;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        int mark = 42;
        memcpy(CMSG_DATA(c), &mark, sizeof mark);
        result(sendmsg(s, &m, 0));
    } else if (!strcmp(mode, "bind")) {        /* bind then listen */
        int s = sock_for(host, SOCK_STREAM);
        int one = 1;
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(s, (struct sockaddr *)&ss, len) < 0) { printf("bind "); result(-1); return 0; }
        printf("listen ");
        result(listen(s, 4));
    } else if (!strcmp(mode, "listen-any")) {  /* listen without bind: an ephemeral port */
        int s = sock_for(host, SOCK_STREAM);
        result(listen(s, 4));
    } else if (!strcmp(mode, "race")) {        /* connect loop while a thread flips the address */
        struct race r = {.stop = 0};
        addr(host, port, (struct sockaddr_storage *)&r.a);
        addr(argv[4], atoi(argv[5]), (struct sockaddr_storage *)&r.b);
        struct sockaddr_in *target = malloc(sizeof *target);
        memcpy(target, &r.a, sizeof r.a);
        r.target = target;
        pthread_t t;
        pthread_create(&t, NULL, flipper, &r);
        int ok = 0, denied = 0, other = 0, rounds = atoi(argv[6]);
        for (int i = 0; i < rounds; i++) {
            int s = socket(AF_INET, SOCK_STREAM, 0);
            if (connect(s, (struct sockaddr *)target, sizeof *target) == 0) ok++;
            else if (errno == EPERM) denied++;
            else other++;
            close(s);
        }
        r.stop = 1;
        pthread_join(t, NULL);
        printf("ok %d denied %d other %d\n", ok, denied, other);
    } else if (!strcmp(mode, "dns-race")) {    /* unconnected sendto while a thread flips the name */
        struct dns_race r = {.stop = 0};
        r.n = dns_query(argv[4], r.a);
        if (dns_query(argv[5], r.b) != r.n) { fprintf(stderr, "names must have the same length\n"); return 2; }
        r.buf = malloc(r.n);
        memcpy(r.buf, r.a, r.n);
        pthread_t t;
        pthread_create(&t, NULL, dns_flipper, &r);
        int s = sock_for(host, SOCK_DGRAM), ok = 0, denied = 0, other = 0, rounds = atoi(argv[6]);
        for (int i = 0; i < rounds; i++) {
            if (sendto(s, r.buf, r.n, 0, (struct sockaddr *)&ss, len) == r.n) ok++;
            else if (errno == EPERM) denied++;
            else other++;
        }
        r.stop = 1;
        pthread_join(t, NULL);
        printf("ok %d denied %d other %d\n", ok, denied, other);
    } else if (!strcmp(mode, "tcp-sendmsg")) { /* connect, then sendmsg SIZE bytes (i % 251) */
        int s = sock_for(host, SOCK_STREAM);
        if (connect(s, (struct sockaddr *)&ss, len) < 0) { result(-1); return 0; }
        long size = atol(argv[4]), sent = 0, calls = 0;
        unsigned char *buf = malloc(size);
        for (long i = 0; i < size; i++) buf[i] = (unsigned char)(i % 251);
        while (sent < size) {
            struct iovec iov = {buf + sent, (size_t)(size - sent)};
            struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
            ssize_t n = sendmsg(s, &m, 0);
            if (n <= 0) { result(-1); return 0; }
            sent += n;
            calls++;
        }
        printf("ok %ld\n", sent);
    } else if (!strcmp(mode, "stall")) {       /* N connects hang on a full backlog; then one more elsewhere */
        int l = socket(AF_INET, SOCK_STREAM, 0);
        if (bind(l, (struct sockaddr *)&ss, len) < 0 || listen(l, 0) < 0) { result(-1); return 1; }
        stall_len = sizeof stall_addr;
        getsockname(l, (struct sockaddr *)&stall_addr, &stall_len);
        int n = atoi(argv[4]);
        pthread_t t;
        for (int i = 0; i < n; i++) pthread_create(&t, NULL, stalled_connect, NULL);
        usleep(300000);
        struct sockaddr_storage good;
        socklen_t glen = addr(argv[5], atoi(argv[6]), &good);
        int s = socket(AF_INET, SOCK_STREAM, 0);
        long long t0 = now_ns();
        int r = connect(s, (struct sockaddr *)&good, glen);
        long long ms = (now_ns() - t0) / 1000000;
        if (r < 0) result(r); else printf("ok %s\n", ms < 2000 ? "fast" : "slow");
        fflush(stdout);
        _exit(0);
    } else if (!strcmp(mode, "connect-loop")) { /* benchmark: N TCP connects; prints ns */
        int rounds = atoi(argv[4]);
        long long t0 = now_ns();
        for (int i = 0; i < rounds; i++) {
            int s = socket(ss.ss_family, SOCK_STREAM, 0);
            if (connect(s, (struct sockaddr *)&ss, len) < 0) { result(-1); return 1; }
            close(s);
        }
        printf("ok %d ns %lld\n", rounds, now_ns() - t0);
    } else if (!strcmp(mode, "udp-loop")) {    /* benchmark: N unconnected UDP sends; prints ns */
        int rounds = atoi(argv[4]);
        int s = socket(ss.ss_family, SOCK_DGRAM, 0);
        long long t0 = now_ns();
        for (int i = 0; i < rounds; i++)
            if (sendto(s, "x", 1, 0, (struct sockaddr *)&ss, len) < 0) { result(-1); return 1; }
        printf("ok %d ns %lld\n", rounds, now_ns() - t0);
    } else if (!strcmp(mode, "accept-loop")) { /* benchmark peer: accept and close forever */
        int s = socket(ss.ss_family, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(s, (struct sockaddr *)&ss, len) < 0 || listen(s, 512) < 0) { result(-1); return 1; }
        for (;;) { int c = accept(s, NULL, NULL); if (c >= 0) close(c); }
    } else if (!strcmp(mode, "lookup-loop")) { /* benchmark: N getaddrinfo(NAME, AF_INET); prints ns */
        int rounds = atoi(argv[5]);
        struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
        long long t0 = now_ns();
        for (int i = 0; i < rounds; i++) {
            int e = getaddrinfo(argv[4], NULL, &hints, &res);
            if (e) { printf("err %s\n", gai_strerror(e)); return 1; }
            freeaddrinfo(res);
        }
        printf("ok %d ns %lld\n", rounds, now_ns() - t0);
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    return 0;
}
