/* vac-udp HOST PORT [SECONDS]: send stdin (at most 64 KiB) as ONE UDP datagram to HOST:PORT
 * (an IPv4 address) and print every datagram that comes back within SECONDS (default 3),
 * one per line. Exit 0 if at least one reply came, 1 if none, 2 on a usage or socket error.
 * Busybox has no UDP client that sends a chosen payload; the network tests of vac use this
 * to send real VacQuery requests from the test guest. Built statically by tools/testenv.sh.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_DATAGRAM 65536

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

int main(int argc, char **argv) {
  static char buf[MAX_DATAGRAM];
  struct sockaddr_in to;
  size_t len = 0;
  ssize_t n;
  int fd, replies = 0;
  long deadline;

  if (argc < 3 || argc > 4) {
    fprintf(stderr, "usage: vac-udp HOST PORT [SECONDS] < payload\n");
    return 2;
  }
  memset(&to, 0, sizeof(to));
  to.sin_family = AF_INET;
  to.sin_port = htons((unsigned short)atoi(argv[2]));
  if (inet_pton(AF_INET, argv[1], &to.sin_addr) != 1) {
    fprintf(stderr, "vac-udp: %s is not an IPv4 address\n", argv[1]);
    return 2;
  }
  while (len < sizeof(buf) && (n = read(0, buf + len, sizeof(buf) - len)) > 0)
    len += (size_t)n;
  fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0 || sendto(fd, buf, len, 0, (struct sockaddr *)&to, sizeof(to)) < 0) {
    fprintf(stderr, "vac-udp: send to %s:%s failed: %s\n", argv[1], argv[2], strerror(errno));
    return 2;
  }
  deadline = now_ms() + 1000L * (argc == 4 ? atoi(argv[3]) : 3);
  for (;;) {
    struct pollfd p = {fd, POLLIN, 0};
    long left = deadline - now_ms();
    if (left <= 0 || poll(&p, 1, (int)left) <= 0)
      break;
    n = recv(fd, buf, sizeof(buf) - 1, 0);
    if (n < 0)
      break;  /* e.g. ECONNREFUSED from an ICMP port unreachable */
    fwrite(buf, 1, (size_t)n, stdout);
    fputc('\n', stdout);
    replies++;
  }
  return replies > 0 ? 0 : 1;
}
