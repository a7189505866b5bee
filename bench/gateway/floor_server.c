// floor_server: the loopback floor for bench/gateway's latency points. A single-threaded epoll
// HTTP/1.1 server that answers every request (headers + Content-Length body) with a fixed 200 and
// a small JSON body, doing nothing else: what wrk measures against it is the cost of the client,
// the kernel's loopback and two context switches, which no server can beat on this machine.
// Build: cc -O2 -o build/release/floor_server bench/gateway/floor_server.c (run.py --floor does).
// Usage: floor_server PORT_FILE  (listens on 127.0.0.1, kernel-picked port, written to PORT_FILE).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { kBuf = 1 << 16, kMaxFd = 4096 };
static char* bufs[kMaxFd];
static size_t lens[kMaxFd];

static const char kResponse[] =
    "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: 77\r\n\r\n"
    "{\"SequenceNumber\":\"49000000000000000000000000000000000000000000000000000000\"}";

// Bytes of the first complete request in b[0..n), or 0 if incomplete.
static size_t Complete(const char* b, size_t n) {
  const char* end = memmem(b, n, "\r\n\r\n", 4);
  if (!end) return 0;
  size_t head = (size_t)(end - b) + 4, body = 0;
  for (const char* p = b; p < end; p = memchr(p, '\n', (size_t)(end - p)) + 1) {
    if (strncasecmp(p, "content-length:", 15) == 0) body = strtoul(p + 15, NULL, 10);
    if (!memchr(p, '\n', (size_t)(end - p))) break;
  }
  return n >= head + body ? head + body : 0;
}

int main(int argc, char** argv) {
  if (argc != 2) return fprintf(stderr, "usage: floor_server PORT_FILE\n"), 2;
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  if (bind(ls, (struct sockaddr*)&a, sizeof a) || listen(ls, 512)) return perror("bind"), 1;
  getsockname(ls, (struct sockaddr*)&a, &al);
  FILE* f = fopen(argv[1], "w");
  fprintf(f, "%d\n", ntohs(a.sin_port));
  fclose(f);
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls}, evs[64];
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
  for (;;) {
    int n = epoll_wait(ep, evs, 64, -1);
    for (int i = 0; i < n; ++i) {
      int fd = evs[i].data.fd;
      if (fd == ls) {
        int c;
        while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          if (c >= kMaxFd) { close(c); continue; }
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          if (!bufs[c]) bufs[c] = malloc(kBuf);
          lens[c] = 0;
          ev.events = EPOLLIN;
          ev.data.fd = c;
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
        }
        continue;
      }
      ssize_t r = read(fd, bufs[fd] + lens[fd], kBuf - lens[fd]);
      if (r <= 0) { close(fd); continue; }
      lens[fd] += (size_t)r;
      size_t used;
      while ((used = Complete(bufs[fd], lens[fd])) > 0) {
        if (write(fd, kResponse, sizeof kResponse - 1) < 0) break;
        memmove(bufs[fd], bufs[fd] + used, lens[fd] - used);
        lens[fd] -= used;
      }
      if (lens[fd] == kBuf) { close(fd); lens[fd] = 0; }
    }
  }
}
