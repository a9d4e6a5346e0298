// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The key tables of schema.h's lists: what the writer and the report spell as JSON keys comes
 * from here (or from the lists themselves), nowhere else.
 */
#include "schema.h"

const struct dstrace_count_key dstrace_audit_count_keys[DSTRACE_AUDIT_COUNTS_N] = {
#define KEY(o, k, f, s) { #o, #k, #o "." #k },
	DSTRACE_AUDIT_COUNTS(KEY)
#undef KEY
};

const char *const dstrace_run_count_keys[DSTRACE_RUN_COUNTS_N] = {
#define KEY(k) #k,
	DSTRACE_RUN_COUNTS(KEY)
#undef KEY
};
