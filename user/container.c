// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Container and pod identity from cgroup v2 paths. The shapes, component by component:
 *
 *   docker, cgroupfs driver        /docker/<id>
 *   docker, systemd driver         /system.slice/docker-<id>.scope
 *   podman (root, rootless)        .../libpod-<id>.scope[/container], /libpod_parent/libpod-<id>
 *   cri-o                          .../crio-<id>.scope, .../crio-<id> (cgroupfs)
 *   containerd (CRI)               .../cri-containerd-<id>.scope
 *   containerd, systemd cgroupsPath under containerd.service (kind, some k3s):
 *                                  /system.slice/containerd.service/<pod slice>:cri-containerd:<id>
 *   Kubernetes, systemd driver     /kubepods.slice/kubepods-<qos>.slice/
 *                                    kubepods-<qos>-pod<uid>.slice/...
 *                                  /kubepods.slice/kubepods-pod<uid>.slice/... (guaranteed)
 *   Kubernetes, cgroupfs driver    /kubepods/<qos>/pod<uid>/<id>, /kubepods/pod<uid>/<id>
 *
 * where <id> is 64 lowercase hex digits and <uid> a pod UID (with "_" for "-" in systemd
 * slice names; a static pod's UID is 32 hex digits). The last container component wins: in
 * nested setups (a kind node is itself a docker container) the innermost one is the
 * process's. A path with a 64-hex-digit component of no known shape still gives the id,
 * with the runtime unknown; so does a bare id under kubepods (containerd and docker's
 * cri-dockerd both make that shape).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "container.h"
#include "hash.h"
#include "htab.h"

static const char *const runtime_names[] = {
	[CONTAINER_RUNTIME_DOCKER] = "docker",
	[CONTAINER_RUNTIME_CONTAINERD] = "containerd",
	[CONTAINER_RUNTIME_CRIO] = "cri-o",
	[CONTAINER_RUNTIME_PODMAN] = "podman",
};

static const char *const qos_names[] = {
	[POD_QOS_GUARANTEED] = "guaranteed",
	[POD_QOS_BURSTABLE] = "burstable",
	[POD_QOS_BESTEFFORT] = "besteffort",
};

const char *container_runtime_name(enum container_runtime runtime)
{
	if (runtime <= CONTAINER_RUNTIME_UNKNOWN || runtime > CONTAINER_RUNTIME_PODMAN)
		return NULL;
	return runtime_names[runtime];
}

const char *pod_qos_name(enum pod_qos qos)
{
	if (qos <= POD_QOS_UNKNOWN || qos > POD_QOS_BESTEFFORT)
		return NULL;
	return qos_names[qos];
}

/* The prefixes of a container's own cgroup ("<prefix>-<id>[.scope]" or, in systemd
 * cgroupsPath notation, "<slice>:<prefix>:<id>"). conmon, podman's and cri-o's monitor of a
 * container, runs beside it in a scope named after it: it counts as that container. */
static const struct {
	const char *prefix;
	enum container_runtime runtime;
} prefixes[] = {
	{ "docker", CONTAINER_RUNTIME_DOCKER },
	{ "cri-containerd", CONTAINER_RUNTIME_CONTAINERD },
	{ "nerdctl", CONTAINER_RUNTIME_CONTAINERD },
	{ "crio", CONTAINER_RUNTIME_CRIO },
	{ "crio-conmon", CONTAINER_RUNTIME_CRIO },
	{ "libpod", CONTAINER_RUNTIME_PODMAN },
	{ "libpod-conmon", CONTAINER_RUNTIME_PODMAN },
};

static bool is_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* s[0..len) is exactly 64 lowercase hex digits. */
static bool is_id(const char *s, size_t len)
{
	if (len != CONTAINER_ID_LEN)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!is_lower_hex(s[i]))
			return false;
	}
	return true;
}

static bool comp_eq(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && !memcmp(s, word, len);
}

static bool ends_with(const char *s, size_t len, const char *suffix)
{
	size_t n = strlen(suffix);

	return len >= n && !memcmp(s + len - n, suffix, n);
}

/* A pod UID in s[0..len): a UUID (8-4-4-4-12 hex digits, with sep between the groups) or
 * a static pod's 32 hex digits. Copied to out with dashes. */
static bool parse_pod_uid(const char *s, size_t len, char sep, char out[POD_UID_LEN + 1])
{
	if (len == 32) {
		for (size_t i = 0; i < len; i++) {
			if (!is_lower_hex(s[i]))
				return false;
		}
	} else if (len == 36) {
		for (size_t i = 0; i < len; i++) {
			bool dash = i == 8 || i == 13 || i == 18 || i == 23;

			if (dash ? s[i] != sep : !is_lower_hex(s[i]))
				return false;
		}
	} else {
		return false;
	}
	for (size_t i = 0; i < len; i++)
		out[i] = s[i] == sep ? '-' : s[i];
	out[len] = '\0';
	return true;
}

/* "<prefix>-<id>" (then ".scope" or nothing) or "<anything>:<prefix>:<id>". */
static bool parse_container_comp(const char *s, size_t len, struct container_info *ci)
{
	size_t n = len;

	if (ends_with(s, n, ".scope"))
		n -= strlen(".scope");
	if (n < CONTAINER_ID_LEN + 2 || !is_id(s + n - CONTAINER_ID_LEN, CONTAINER_ID_LEN))
		return false;
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t plen = strlen(prefixes[i].prefix);
		const char *sep = s + n - CONTAINER_ID_LEN - 1;
		bool dashed = n == plen + 1 + CONTAINER_ID_LEN && *sep == '-' &&
			      !memcmp(s, prefixes[i].prefix, plen);
		/* "<slice>:<prefix>:<id>": the prefix sits between the two colons. */
		bool colon = n == len && *sep == ':' && (size_t)(sep - s) > plen &&
			     sep[-(long)plen - 1] == ':' &&
			     !memcmp(sep - plen, prefixes[i].prefix, plen);

		if (dashed || colon) {
			ci->runtime = prefixes[i].runtime;
			memcpy(ci->id, s + n - CONTAINER_ID_LEN, CONTAINER_ID_LEN);
			ci->id[CONTAINER_ID_LEN] = '\0';
			return true;
		}
	}
	return false;
}

/* A systemd pod slice: "[...-]kubepods-pod<uid>.slice", "...kubepods-burstable-pod<uid>.slice",
 * "...kubepods-besteffort-pod<uid>.slice" (kind's nested kubelet: "kubelet-kubepods-..."). */
static bool parse_pod_slice(const char *s, size_t len, struct container_info *ci)
{
	static const struct {
		const char *infix;
		enum pod_qos qos;
	} kinds[] = {
		{ "kubepods-burstable-pod", POD_QOS_BURSTABLE },
		{ "kubepods-besteffort-pod", POD_QOS_BESTEFFORT },
		{ "kubepods-pod", POD_QOS_GUARANTEED },
	};
	char uid[POD_UID_LEN + 1];

	if (!ends_with(s, len, ".slice"))
		return false;
	len -= strlen(".slice");
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		size_t ilen = strlen(kinds[i].infix);

		for (size_t at = 0; at + ilen <= len; at++) {
			if (memcmp(s + at, kinds[i].infix, ilen) || (at && s[at - 1] != '-'))
				continue;
			if (!parse_pod_uid(s + at + ilen, len - at - ilen, '_', uid))
				return false;
			memcpy(ci->pod_uid, uid, sizeof(uid));
			ci->qos = kinds[i].qos;
			return true;
		}
	}
	return false;
}

void container_info_parse(const char *path, struct container_info *ci)
{
	const char *comp = path, *prev = NULL;
	size_t prev_len = 0;
	bool in_kubepods = false, under_docker = false, under_containerd = false,
	     under_libpod = false;

	memset(ci, 0, sizeof(*ci));
	while (*comp) {
		size_t len;
		char uid[POD_UID_LEN + 1];

		while (*comp == '/')
			comp++;
		len = strcspn(comp, "/");
		if (!len)
			break;

		if (parse_pod_slice(comp, len, ci)) {
			in_kubepods = true;
		} else if (comp_eq(comp, len, "kubepods") || comp_eq(comp, len, "kubepods.slice")) {
			in_kubepods = true;
		} else if (in_kubepods && len > 3 && !memcmp(comp, "pod", 3) &&
			   parse_pod_uid(comp + 3, len - 3, '-', uid)) {
			/* cgroupfs driver: /kubepods[/<qos>]/pod<uid> */
			memcpy(ci->pod_uid, uid, sizeof(uid));
			if (prev && comp_eq(prev, prev_len, "burstable"))
				ci->qos = POD_QOS_BURSTABLE;
			else if (prev && comp_eq(prev, prev_len, "besteffort"))
				ci->qos = POD_QOS_BESTEFFORT;
			else
				ci->qos = POD_QOS_GUARANTEED;
		} else if (parse_container_comp(comp, len, ci)) {
			/* Runtime and id set. "<pod slice>:<prefix>:<id>" names the pod too. */
			size_t colon = strcspn(comp, ":/");

			if (colon < len && parse_pod_slice(comp, colon, ci))
				in_kubepods = true;
		} else if (is_id(comp, len)) {
			/* A bare id: its parent says whose. */
			ci->runtime = under_docker	   ? CONTAINER_RUNTIME_DOCKER :
				      under_libpod	   ? CONTAINER_RUNTIME_PODMAN :
				      under_containerd ? CONTAINER_RUNTIME_CONTAINERD :
							 CONTAINER_RUNTIME_UNKNOWN;
			memcpy(ci->id, comp, CONTAINER_ID_LEN);
			ci->id[CONTAINER_ID_LEN] = '\0';
		}
		under_docker = comp_eq(comp, len, "docker");
		under_libpod = comp_eq(comp, len, "libpod_parent");
		under_containerd = under_containerd || comp_eq(comp, len, "containerd.service");
		prev = comp;
		prev_len = len;
		comp += len;
	}
	if (ci->id[0])
		return;
	/* No known shape: the first run of exactly 64 lowercase hex digits, if any. */
	for (const char *p = path; *p; p++) {
		size_t n = 0;

		if (p != path && is_lower_hex(p[-1]))
			continue;
		while (is_lower_hex(p[n]))
			n++;
		if (n == CONTAINER_ID_LEN) {
			memcpy(ci->id, p, n);
			ci->id[n] = '\0';
			return;
		}
		p += n ? n - 1 : 0;
	}
}

static int json_member(char *buf, size_t size, const char *name, const char *value, bool comma)
{
	if (!value || !*value)
		return snprintf(buf, size, "%s\"%s\":null", comma ? "," : "", name);
	return snprintf(buf, size, "%s\"%s\":\"%s\"", comma ? "," : "", name, value);
}

int container_info_json(const struct container_info *ci, char *buf, size_t size)
{
	size_t n = 0;
	int w;

	/* Ids, UIDs and names are hex digits, dashes and letters: nothing to escape. */
	w = json_member(buf, size, "container", ci->id, false);
	n += w > 0 ? w : 0;
	w = json_member(buf + (n < size ? n : size), n < size ? size - n : 0, "runtime",
			container_runtime_name(ci->runtime), true);
	n += w > 0 ? w : 0;
	w = json_member(buf + (n < size ? n : size), n < size ? size - n : 0, "pod_uid",
			ci->pod_uid, true);
	n += w > 0 ? w : 0;
	w = json_member(buf + (n < size ? n : size), n < size ? size - n : 0, "qos",
			pod_qos_name(ci->qos), true);
	n += w > 0 ? w : 0;
	return (int)n;
}

struct container_cache_entry {
	uint64_t cgroup_id; /* 0: empty slot (no cgroup has id 0) */
	struct container_info info;
};

static bool cache_empty(const void *slot)
{
	return !((const struct container_cache_entry *)slot)->cgroup_id;
}

static bool cache_match(const void *slot, const void *key)
{
	return ((const struct container_cache_entry *)slot)->cgroup_id == *(const uint64_t *)key;
}

static const struct htab_ops cache_ops = { .empty = cache_empty, .match = cache_match };

struct container_cache {
	struct htab slots; /* of struct container_cache_entry, 2 * max entries */
	uint32_t max, used;
	uint64_t misses;
	container_path_fn path_of;
	void *ctx;
};

int container_cache__new(uint32_t max_entries, container_path_fn path_of, void *ctx,
			 struct container_cache **out)
{
	struct container_cache *c;

	*out = NULL;
	if (!max_entries || max_entries > (1u << 24) || !path_of)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	if (htab_alloc(&c->slots, &cache_ops, sizeof(struct container_cache_entry),
		       htab_pow2(max_entries * 2))) {
		free(c);
		return -ENOMEM;
	}
	c->max = max_entries;
	c->path_of = path_of;
	c->ctx = ctx;
	*out = c;
	return 0;
}

void container_cache__free(struct container_cache *c)
{
	if (!c)
		return;
	htab_free(&c->slots);
	free(c);
}

const struct container_info *container_cache__get(struct container_cache *c, uint64_t cgroup_id,
						  uint32_t pid)
{
	static const struct container_info none;
	struct container_cache_entry *e;
	char path[1024];
	bool found;

	if (!cgroup_id)
		return &none;
	e = htab_find(&c->slots, dstrace_hash64(cgroup_id), &cgroup_id, &found);
	if (found)
		return &e->info;
	if (c->used == c->max) {
		/* Full: start over rather than grow; the cgroups in use come back one lookup each. */
		htab_clear(&c->slots);
		c->used = 0;
		e = htab_place(&c->slots, dstrace_hash64(cgroup_id));
	}
	c->misses++;
	path[0] = '\0';
	c->path_of(c->ctx, cgroup_id, pid, path, sizeof(path));
	e->cgroup_id = cgroup_id;
	container_info_parse(path, &e->info);
	c->used++;
	return &e->info;
}

uint64_t container_cache__misses(const struct container_cache *c)
{
	return c->misses;
}
