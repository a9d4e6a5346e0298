/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What a cgroup v2 path says about containers: the container id and its runtime (docker,
 * containerd, cri-o, podman) and, under Kubernetes, the pod UID and QoS class. Only the path
 * is read (no runtime socket, no API): it is what the kernel gives for every process, also
 * for one already gone. A per-cgroup-id cache keeps the lookup off the per-event path.
 */
#ifndef DSTRACE_CONTAINER_H
#define DSTRACE_CONTAINER_H

#include <stddef.h>
#include <stdint.h>

enum container_runtime {
	CONTAINER_RUNTIME_UNKNOWN = 0, /* not a container, or a shape that names no runtime */
	CONTAINER_RUNTIME_DOCKER,
	CONTAINER_RUNTIME_CONTAINERD,
	CONTAINER_RUNTIME_CRIO,
	CONTAINER_RUNTIME_PODMAN,
};

enum pod_qos {
	POD_QOS_UNKNOWN = 0, /* not in a Kubernetes pod */
	POD_QOS_GUARANTEED,
	POD_QOS_BURSTABLE,
	POD_QOS_BESTEFFORT,
};

#define CONTAINER_ID_LEN 64
#define POD_UID_LEN 36

struct container_info {
	enum container_runtime runtime;
	char id[CONTAINER_ID_LEN + 1]; /* 64 lowercase hex digits, "" if none */
	char pod_uid[POD_UID_LEN + 1]; /* "" outside a pod; dashes, as kubectl shows it */
	enum pod_qos qos;
};

/* Fill ci from a cgroup v2 path ("/kubepods.slice/.../cri-containerd-<id>.scope"); fields
 * that the path does not tell are left unknown/empty. Never fails. */
void container_info_parse(const char *cgroup_path, struct container_info *ci);

/* "docker", "containerd", "cri-o", "podman"; NULL for unknown. */
const char *container_runtime_name(enum container_runtime runtime);
/* "guaranteed", "burstable", "besteffort"; NULL for unknown. */
const char *pod_qos_name(enum pod_qos qos);

/* The container fields as JSON members, for a record being written:
 * "container":"<id>"|null,"runtime":...,"pod_uid":...,"qos":... (no braces, no leading comma).
 * Returns what snprintf returns. */
int container_info_json(const struct container_info *ci, char *buf, size_t size);

/* cgroup id -> container_info, bounded. path_of fills the cgroup v2 path of a cgroup id
 * (pid: a process of that cgroup, to read /proc/PID/cgroup first); "" when unknown. Each
 * cgroup id is resolved once (unknown ones too); when the cache is full it starts over. */
typedef void (*container_path_fn)(void *ctx, uint64_t cgroup_id, uint32_t pid, char *path,
				  size_t size);
struct container_cache;

int container_cache__new(uint32_t max_entries, container_path_fn path_of, void *ctx,
			 struct container_cache **out);
void container_cache__free(struct container_cache *c);
const struct container_info *container_cache__get(struct container_cache *c, uint64_t cgroup_id,
						  uint32_t pid);
/* Lookups that called path_of (for tests and statistics). */
uint64_t container_cache__misses(const struct container_cache *c);

#endif /* DSTRACE_CONTAINER_H */
