// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The unit-test runner: every suite, or one suite (and one test) named on the command line.
 *   unit-tests [SUITE [TEST]]
 * Exits 0 only if every assertion passed; the last line is "N passed, N failed" (tests).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <CUnit/Basic.h>
#include "unit.h"

static int run(int argc, char **argv)
{
	CU_pSuite suite;
	CU_pTest test;

	if (argc < 2)
		return CU_basic_run_tests();
	suite = CU_get_suite(argv[1]);
	if (!suite) {
		fprintf(stderr, "unit-tests: no suite '%s'\n", argv[1]);
		return -1;
	}
	if (argc < 3)
		return CU_basic_run_suite(suite);
	test = CU_get_test(suite, argv[2]);
	if (!test) {
		fprintf(stderr, "unit-tests: no test '%s' in suite '%s'\n", argv[2], argv[1]);
		return -1;
	}
	return CU_basic_run_test(suite, test);
}

int main(int argc, char **argv)
{
	unsigned int tests_run, tests_failed, failures, suites_failed;
	int err;

	/* Text event lines print local time: make it the same everywhere. */
	setenv("TZ", "UTC", 1);
	tzset();

	if (CU_initialize_registry() != CUE_SUCCESS) {
		fprintf(stderr, "unit-tests: cannot initialize CUnit: %s\n", CU_get_error_msg());
		return 2;
	}
	err = register_options_tests();
	if (!err)
		err = register_format_tests();
	if (!err)
		err = register_aggregate_tests();
	if (!err)
		err = register_cgroupfs_tests();
	if (!err)
		err = register_report_roundtrip_tests();
	if (!err)
		err = register_report_tests();
	if (!err)
		err = register_metrics_tests();
	if (!err)
		err = register_outfile_tests();
	if (!err)
		err = register_container_tests();
	if (!err)
		err = register_clock_tests();
	if (!err)
		err = register_resolver_tests();
	if (!err)
		err = register_htab_tests();
	if (!err)
		err = register_programs_tests();
	if (!err)
		err = register_audit_tests();
	if (err) {
		fprintf(stderr, "unit-tests: cannot register the tests: %s\n", CU_get_error_msg());
		CU_cleanup_registry();
		return 2;
	}

	CU_basic_set_mode(CU_BRM_VERBOSE);
	err = run(argc, argv);
	tests_run = CU_get_number_of_tests_run();
	tests_failed = CU_get_number_of_tests_failed();
	failures = CU_get_number_of_failures();
	suites_failed = CU_get_number_of_suites_failed();
	CU_cleanup_registry();

	printf("%u passed, %u failed\n", tests_run - tests_failed, tests_failed);
	fflush(stdout);
	return err || failures || suites_failed || tests_failed ? 1 : 0;
}
