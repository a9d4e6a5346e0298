// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Assertion helpers: on failure the message carries both values; CUnit copies it into its
 * failure record, so a stack buffer is enough. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "unit.h"

int unit_add_suite(const char *name, const CU_TestInfo *tests, CU_CleanupFunc cleanup)
{
	CU_pSuite suite = CU_add_suite(name, NULL, cleanup);

	if (!suite)
		return CU_get_error();
	for (; tests->pName; tests++) {
		if (!CU_add_test(suite, tests->pName, tests->pTestFunc))
			return CU_get_error();
	}
	return CUE_SUCCESS;
}

bool unit_check(struct unit_loc at, bool ok, const char *fmt, ...)
{
	char msg[4096];
	va_list ap;

	if (ok) {
		CU_assertImplementation(CU_TRUE, at.line, "", at.file, at.func, CU_FALSE);
		return true;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	CU_assertImplementation(CU_FALSE, at.line, msg, at.file, at.func, at.fatal);
	return false;
}

bool unit_str_eq(struct unit_loc at, const char *expr, const char *got, const char *want)
{
	return unit_check(at, got && want && !strcmp(got, want),
			  "%s\n        expected \"%s\"\n        got      \"%s\"", expr,
			  want ? want : "(null)", got ? got : "(null)");
}

bool unit_uint_eq(struct unit_loc at, const char *expr, unsigned long long got,
		  unsigned long long want)
{
	return unit_check(at, got == want, "%s: expected %llu, got %llu", expr, want, got);
}

bool unit_int_eq(struct unit_loc at, const char *expr, long long got, long long want)
{
	return unit_check(at, got == want, "%s: expected %lld, got %lld", expr, want, got);
}
