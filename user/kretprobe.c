// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Return probes that follow many calls at once (kretprobe.h). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/perf_event.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include "cgroupfs.h"
#include "kretprobe.h"

#define GROUP "dstrace"

/* One command to kprobe_events ("r4096:dstrace/E F", "-:dstrace/E"). 0 or a negative errno. */
static int kprobe_events_write(const char *cmd)
{
	char path[128];
	ssize_t n;
	int fd, err = dstrace_tracefs_path("kprobe_events", path, sizeof(path));

	if (err)
		return err;
	fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, cmd, strlen(cmd));
	err = n < 0 ? -errno : (size_t)n == strlen(cmd) ? 0 : -EIO;
	close(fd);
	return err;
}

static void event_remove(const char *event)
{
	char cmd[KRETPROBE_NAME_LEN + 16];

	snprintf(cmd, sizeof(cmd), "-:" GROUP "/%s", event);
	kprobe_events_write(cmd);
}

unsigned long dstrace_pidns_ino(void)
{
	struct stat st;

	return stat("/proc/self/ns/pid", &st) ? 0 : (unsigned long)st.st_ino;
}

bool dstrace_pidns_initial(void)
{
	return dstrace_pidns_ino() == 0xEFFFFFFCUL; /* PROC_PID_INIT_INO */
}

/* Events of dstrace processes that ended without removing theirs (killed): "FUNC_NS_PID"
 * whose NS is ours and whose PID is no process. One of a live dstrace stays (and the kernel
 * refuses to remove an event in use). The names are read first, then removed: removing
 * while kprobe_events is read would shift what is left to read. */
static void sweep_stale(unsigned long ns)
{
	char path[128], line[512], names[KRETPROBES_MAX * 4][KRETPROBE_NAME_LEN];
	int n = 0;
	FILE *f;

	if (dstrace_tracefs_path("kprobe_events", path, sizeof(path)))
		return;
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f) && n < (int)(sizeof(names) / sizeof(names[0]))) {
		char *ev = strstr(line, ":" GROUP "/"), *end, *us;
		unsigned long ev_ns;
		long pid;

		if (!ev)
			continue;
		ev += strlen(":" GROUP "/");
		end = strchr(ev, ' ');
		if (!end || end - ev >= KRETPROBE_NAME_LEN)
			continue;
		*end = '\0';
		snprintf(names[n], KRETPROBE_NAME_LEN, "%s", ev);
		us = strrchr(ev, '_'); /* FUNC_NS_PID: PID */
		if (!us)
			continue;
		pid = strtol(us + 1, &end, 10);
		if (*end || pid <= 0)
			continue;
		*us = '\0';
		us = strrchr(ev, '_'); /* NS */
		if (!us)
			continue;
		ev_ns = strtoul(us + 1, &end, 10);
		if (*end || ev_ns != ns || !(kill((pid_t)pid, 0) && errno == ESRCH))
			continue;
		n++;
	}
	fclose(f);
	while (n > 0)
		event_remove(names[--n]);
}

static int event_id(const char *event)
{
	char file[KRETPROBE_NAME_LEN + 32], path[192], buf[32];
	ssize_t n;
	int fd;

	snprintf(file, sizeof(file), "events/" GROUP "/%s/id", event);
	if (dstrace_tracefs_path(file, path, sizeof(path)))
		return -ENOENT;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -EIO;
	buf[n] = '\0';
	return atoi(buf);
}

struct bpf_link *kretprobe_attach(struct kretprobes *k, struct bpf_program *prog,
				  const char *func)
{
	char event[KRETPROBE_NAME_LEN], cmd[2 * KRETPROBE_NAME_LEN + 32];
	struct perf_event_attr attr = { .size = sizeof(attr), .type = PERF_TYPE_TRACEPOINT,
					.sample_period = 1, .wakeup_events = 1 };
	struct bpf_link *link;
	int err, id, pfd;
	size_t i;

	if (k->n == KRETPROBES_MAX) {
		errno = E2BIG;
		return NULL;
	}
	if (!k->swept) {
		sweep_stale(dstrace_pidns_ino());
		k->swept = true;
	}
	/* an event name is letters, digits and '_' (a function may be "f.isra.0"); the PID
	 * namespace keeps two dstraces of the same PID in two containers apart */
	snprintf(event, sizeof(event), "%.36s_%lu_%d", func, dstrace_pidns_ino(), (int)getpid());
	for (i = 0; event[i]; i++)
		if (!isalnum((unsigned char)event[i]))
			event[i] = '_';
	snprintf(cmd, sizeof(cmd), "r%d:" GROUP "/%s %s", KRETPROBE_MAXACTIVE, event, func);
	err = kprobe_events_write(cmd);
	if (err == -EEXIST) { /* ours from an earlier attempt */
		event_remove(event);
		err = kprobe_events_write(cmd);
	}
	if (err) {
		errno = -err;
		return NULL;
	}
	id = event_id(event);
	if (id < 0) {
		err = id;
		goto remove;
	}
	attr.config = (__u64)id;
	pfd = (int)syscall(SYS_perf_event_open, &attr, -1 /* every process */, 0 /* cpu */,
			   -1 /* group */, PERF_FLAG_FD_CLOEXEC);
	if (pfd < 0) {
		err = -errno;
		goto remove;
	}
	link = bpf_program__attach_perf_event(prog, pfd); /* the link owns pfd */
	if (!link) {
		err = -errno;
		close(pfd);
		goto remove;
	}
	snprintf(k->events[k->n++], KRETPROBE_NAME_LEN, "%s", event);
	return link;
remove:
	event_remove(event);
	errno = -err;
	return NULL;
}

int kretprobes_missed(const struct kretprobes *k, uint64_t *missed)
{
	char path[128], line[512], name[256];
	unsigned long long hit, miss;
	FILE *f;

	*missed = 0;
	if (!k->n)
		return 0;
	if (dstrace_tracefs_path("kprobe_profile", path, sizeof(path)))
		return -ENOENT;
	f = fopen(path, "re");
	if (!f)
		return -errno;
	/* "  NAME  NHIT  NMISSED": a return probe's misses include the calls it had no room for
	 * since Linux 5.17 (and 5.10.94, 5.15.17); before, only its entry's, which are rare */
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%255s %llu %llu", name, &hit, &miss) != 3)
			continue;
		for (int i = 0; i < k->n; i++)
			if (!strcmp(name, k->events[i]))
				*missed += miss;
	}
	fclose(f);
	return 0;
}

void kretprobes_remove(struct kretprobes *k)
{
	while (k->n > 0)
		event_remove(k->events[--k->n]);
}
