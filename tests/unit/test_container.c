// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Container and pod identity from cgroup v2 paths (user/container.c): the path shapes each
 * runtime and each kubelet cgroup driver make, as /proc/PID/cgroup shows them, and the
 * per-cgroup-id cache. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "container.h"
#include "unit.h"

#define ID "3f4e2a1b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f"
#define ID2 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define UID "6b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"
#define UID_ "6b1c2d3e_4f5a_4b6c_8d7e_9f0a1b2c3d4e"

/* "runtime id pod_uid qos", "-" for each unknown field, for one-line comparisons. */
static const char *describe(const char *path)
{
	static char buf[256];
	struct container_info ci;
	const char *rt, *qos;

	container_info_parse(path, &ci);
	rt = container_runtime_name(ci.runtime);
	qos = pod_qos_name(ci.qos);
	snprintf(buf, sizeof(buf), "%s %s %s %s", rt ? rt : "-", ci.id[0] ? ci.id : "-",
		 ci.pod_uid[0] ? ci.pod_uid : "-", qos ? qos : "-");
	return buf;
}

static void test_docker(void)
{
	ASSERT_STR_EQ(describe("/docker/" ID), "docker " ID " - -");
	ASSERT_STR_EQ(describe("/system.slice/docker-" ID ".scope"), "docker " ID " - -");
	/* rootless docker, cgroupfs driver inside the user's service */
	ASSERT_STR_EQ(describe("/user.slice/user-1000.slice/user@1000.service/docker.service/docker/" ID),
		      "docker " ID " - -");
	/* the daemon itself is no container */
	ASSERT_STR_EQ(describe("/system.slice/docker.service"), "- - - -");
}

static void test_containerd(void)
{
	ASSERT_STR_EQ(describe("/system.slice/cri-containerd-" ID ".scope"), "containerd " ID " - -");
	ASSERT_STR_EQ(describe("/system.slice/containerd.service/kubepods-besteffort-pod" UID_
			       ".slice:cri-containerd:" ID),
		      "containerd " ID " " UID " besteffort");
	ASSERT_STR_EQ(describe("/system.slice/containerd.service/" ID), "containerd " ID " - -");
	ASSERT_STR_EQ(describe("/system.slice/nerdctl-" ID ".scope"), "containerd " ID " - -");
	ASSERT_STR_EQ(describe("/system.slice/containerd.service"), "- - - -");
}

static void test_crio(void)
{
	ASSERT_STR_EQ(describe("/machine.slice/crio-" ID ".scope"), "cri-o " ID " - -");
	ASSERT_STR_EQ(describe("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_
			       ".slice/crio-" ID ".scope"),
		      "cri-o " ID " " UID " burstable");
	/* conmon, the container's monitor, in a scope named after it */
	ASSERT_STR_EQ(describe("/kubepods.slice/kubepods-pod" UID_ ".slice/crio-conmon-" ID ".scope"),
		      "cri-o " ID " " UID " guaranteed");
	/* cgroupfs driver */
	ASSERT_STR_EQ(describe("/kubepods/besteffort/pod" UID "/crio-" ID), "cri-o " ID " " UID " besteffort");
}

static void test_podman(void)
{
	ASSERT_STR_EQ(describe("/machine.slice/libpod-" ID ".scope"), "podman " ID " - -");
	ASSERT_STR_EQ(describe("/machine.slice/libpod-" ID ".scope/container"), "podman " ID " - -");
	ASSERT_STR_EQ(describe("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" ID
			       ".scope/container"),
		      "podman " ID " - -");
	ASSERT_STR_EQ(describe("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-conmon-" ID
			       ".scope"),
		      "podman " ID " - -");
	ASSERT_STR_EQ(describe("/libpod_parent/libpod-" ID), "podman " ID " - -");
	ASSERT_STR_EQ(describe("/libpod_parent/" ID), "podman " ID " - -");
}

static void test_kubepods_systemd(void)
{
	ASSERT_STR_EQ(describe("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_
			       ".slice/cri-containerd-" ID ".scope"),
		      "containerd " ID " " UID " burstable");
	ASSERT_STR_EQ(describe("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UID_
			       ".slice/cri-containerd-" ID ".scope"),
		      "containerd " ID " " UID " besteffort");
	ASSERT_STR_EQ(describe("/kubepods.slice/kubepods-pod" UID_ ".slice/cri-containerd-" ID ".scope"),
		      "containerd " ID " " UID " guaranteed");
	ASSERT_STR_EQ(describe("/kubepods.slice/kubepods-pod" UID_ ".slice/docker-" ID ".scope"),
		      "docker " ID " " UID " guaranteed");
	/* the pod's own slice (no container yet), and the QoS slice alone */
	ASSERT_STR_EQ(describe("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_
			       ".slice"),
		      "- - " UID " burstable");
	ASSERT_STR_EQ(describe("/kubepods.slice/kubepods-burstable.slice"), "- - - -");
	/* a static pod: its UID is a 32-hex-digit hash */
	ASSERT_STR_EQ(describe("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
			       "5d8c6d1a2b3c4d5e6f708192a3b4c5d6.slice/cri-containerd-" ID ".scope"),
		      "containerd " ID " 5d8c6d1a2b3c4d5e6f708192a3b4c5d6 burstable");
}

static void test_kubepods_cgroupfs(void)
{
	/* A bare id: containerd and cri-dockerd both make it, the runtime stays unknown. */
	ASSERT_STR_EQ(describe("/kubepods/burstable/pod" UID "/" ID), "- " ID " " UID " burstable");
	ASSERT_STR_EQ(describe("/kubepods/besteffort/pod" UID "/" ID), "- " ID " " UID " besteffort");
	ASSERT_STR_EQ(describe("/kubepods/pod" UID "/" ID), "- " ID " " UID " guaranteed");
	/* "pod..." outside kubepods is just a name */
	ASSERT_STR_EQ(describe("/system.slice/pod" UID), "- - - -");
}

static void test_nested(void)
{
	/* kind: the node is a docker container; its kubelet nests kubepods in it. The innermost
	 * container is the process's. */
	ASSERT_STR_EQ(describe("/system.slice/docker-" ID2 ".scope/kubelet.slice/kubelet-kubepods.slice/"
			       "kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" UID_
			       ".slice/cri-containerd-" ID ".scope"),
		      "containerd " ID " " UID " besteffort");
	/* the kind node's own processes: the outer container */
	ASSERT_STR_EQ(describe("/system.slice/docker-" ID2 ".scope/system.slice/kubelet.service"),
		      "docker " ID2 " - -");
}

static void test_not_containers(void)
{
	ASSERT_STR_EQ(describe(""), "- - - -");
	ASSERT_STR_EQ(describe("/"), "- - - -");
	ASSERT_STR_EQ(describe("/user.slice/user-1000.slice/session-3.scope"), "- - - -");
	ASSERT_STR_EQ(describe("/system.slice/nginx.service"), "- - - -");
	/* 63 and 65 hex digits, upper case: no id */
	ASSERT_STR_EQ(describe("/docker/" "3f4e2a1b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2"),
		      "- - - -");
	ASSERT_STR_EQ(describe("/docker/" ID "0"), "- - - -");
	ASSERT_STR_EQ(describe("/docker/3F4E2A1B9C8D7E6F5A4B3C2D1E0F9A8B7C6D5E4F3A2B1C0D9E8F7A6B5C4D3E2F"),
		      "- - - -");
	/* a bad pod UID: no pod */
	ASSERT_STR_EQ(describe("/kubepods.slice/kubepods-podnot_a_uid.slice/cri-containerd-" ID ".scope"),
		      "containerd " ID " - -");
}

static void test_unknown_shape(void)
{
	/* An id in a shape of no known runtime: the id, nothing else (as before the parser). */
	ASSERT_STR_EQ(describe("/lxc.payload.c1/garden-" ID ".scope"), "- " ID " - -");
	ASSERT_STR_EQ(describe("/default/" ID), "- " ID " - -");
}

static void test_json(void)
{
	struct container_info ci;
	char buf[512];
	int n;

	container_info_parse("/kubepods/pod" UID "/crio-" ID, &ci);
	n = container_info_json(&ci, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "\"container\":\"" ID "\",\"runtime\":\"cri-o\",\"pod_uid\":\"" UID
			   "\",\"qos\":\"guaranteed\"");
	ASSERT_INT_EQ(n, (long long)strlen(buf));
	container_info_parse("/system.slice/cron.service", &ci);
	container_info_json(&ci, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "\"container\":null,\"runtime\":null,\"pod_uid\":null,\"qos\":null");
	/* cut short: still terminated, the full length returned */
	container_info_parse("/kubepods/pod" UID "/crio-" ID, &ci);
	n = container_info_json(&ci, buf, 20);
	ASSERT_UINT_EQ(strlen(buf), 19);
	ASSERT_TRUE(n > 100);
}

/* The cache: path_of is called once per cgroup id, and starts over when full. */
static int path_calls;

static void fake_path_of(void *ctx, uint64_t cgroup_id, uint32_t pid, char *path, size_t size)
{
	(void)ctx;
	path_calls++;
	if (cgroup_id == 7) /* a cgroup gone before we looked */
		return;
	snprintf(path, size, "/kubepods/besteffort/pod" UID "/%064llx", (unsigned long long)cgroup_id);
	ASSERT_UINT_EQ(pid, cgroup_id + 1000);
}

static void test_cache(void)
{
	struct container_cache *c = NULL;
	const struct container_info *ci;

	ASSERT_INT_EQ(container_cache__new(0, fake_path_of, NULL, &c), -22);
	REQUIRE_TRUE(!container_cache__new(4, fake_path_of, NULL, &c) && c);
	path_calls = 0;
	for (int round = 0; round < 3; round++) {
		for (uint64_t id = 1; id <= 4; id++) {
			ci = container_cache__get(c, id, id + 1000);
			ASSERT_INT_EQ(ci->qos, POD_QOS_BESTEFFORT);
			ASSERT_UINT_EQ(strtoull(ci->id, NULL, 16), id);
		}
	}
	ASSERT_INT_EQ(path_calls, 4);
	ASSERT_UINT_EQ(container_cache__misses(c), 4);
	/* unknown ones are cached too */
	ci = container_cache__get(c, 7, 1007);
	ASSERT_STR_EQ(ci->id, "");
	ASSERT_INT_EQ(path_calls, 5); /* the cache was full: it started over */
	ci = container_cache__get(c, 7, 1007);
	ASSERT_INT_EQ(path_calls, 5);
	/* id 0 (no cgroup) never calls path_of */
	ci = container_cache__get(c, 0, 0);
	ASSERT_STR_EQ(ci->id, "");
	ASSERT_INT_EQ(path_calls, 5);
	/* after starting over, the old entries are looked up again, once */
	ci = container_cache__get(c, 1, 1001);
	ci = container_cache__get(c, 1, 1001);
	ASSERT_INT_EQ(path_calls, 6);
	container_cache__free(c);
}

static const CU_TestInfo tests[] = {
	{ "docker", test_docker },
	{ "containerd", test_containerd },
	{ "cri-o", test_crio },
	{ "podman", test_podman },
	{ "kubepods, systemd driver", test_kubepods_systemd },
	{ "kubepods, cgroupfs driver", test_kubepods_cgroupfs },
	{ "nested (kind)", test_nested },
	{ "not containers", test_not_containers },
	{ "unknown shapes", test_unknown_shape },
	{ "json members", test_json },
	{ "per-cgroup cache", test_cache },
	CU_TEST_INFO_NULL,
};

int register_container_tests(void)
{
	return unit_add_suite("container", tests, NULL);
}
