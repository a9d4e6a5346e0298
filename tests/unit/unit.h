/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Shared by the unit tests: one registration function per module under test, and assertions
 * that say what was expected and what came (CUnit's own only repeat the expression).
 */
#ifndef DSTRACE_UNIT_H
#define DSTRACE_UNIT_H

#include <stdbool.h>
#include <stdint.h>
#include <CUnit/CUnit.h>

/* Each adds one suite to the registry; 0 or a CUnit error code. */
int register_options_tests(void);
int register_format_tests(void);
int register_aggregate_tests(void);
int register_cgroupfs_tests(void);
int register_resolver_tests(void);
int register_report_tests(void);
int register_metrics_tests(void);
int register_outfile_tests(void);
int register_report_roundtrip_tests(void);
int register_container_tests(void);
int register_audit_tests(void);
int register_programs_tests(void);
int register_clock_tests(void);
int register_htab_tests(void);

/* A kernel entry (proc_stats) of executable /usr/bin/<name>, uid 7, made at first_ns, with n
 * TCP connects (test_programs.c). */
struct dstrace_proc_stats unit_proc_entry(const char *name, uint64_t first_ns, uint64_t n);

/* Adds suite name with the tests of a CU_TEST_INFO_NULL-terminated array; cleanup (or NULL)
 * runs after the suite's last test. 0 or a CUnit error code. */
int unit_add_suite(const char *name, const CU_TestInfo *tests, CU_CleanupFunc cleanup);

struct unit_loc {
	const char *file;
	unsigned int line;
	const char *func;
	bool fatal; /* a failure ends the test (CUnit longjmps out of it) */
};

#define UNIT_AT(fatal) ((struct unit_loc){ __FILE__, __LINE__, __func__, (fatal) })

bool unit_check(struct unit_loc at, bool ok, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
bool unit_str_eq(struct unit_loc at, const char *expr, const char *got, const char *want);
bool unit_uint_eq(struct unit_loc at, const char *expr, unsigned long long got,
		  unsigned long long want);
bool unit_int_eq(struct unit_loc at, const char *expr, long long got, long long want);

#define ASSERT_TRUE(cond) unit_check(UNIT_AT(false), (cond), "%s", #cond)
#define ASSERT_STR_EQ(got, want) unit_str_eq(UNIT_AT(false), #got, (got), (want))
#define ASSERT_UINT_EQ(got, want) unit_uint_eq(UNIT_AT(false), #got, (got), (want))
#define ASSERT_INT_EQ(got, want) unit_int_eq(UNIT_AT(false), #got, (got), (want))
/* For preconditions the rest of the test cannot do without. */
#define REQUIRE_TRUE(cond) unit_check(UNIT_AT(true), (cond), "%s", #cond)

#endif /* DSTRACE_UNIT_H */
