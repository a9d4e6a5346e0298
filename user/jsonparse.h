/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A small strict JSON (RFC 8259) reader for the audit records `dstrace report` reads: one
 * value per call, parsed into a tree of nodes that lives in the json_doc until the next parse.
 * Strict where json-c is lenient: no single quotes, NaN, comments, raw control characters,
 * lone surrogates, invalid UTF-8 or trailing text; integers beyond 2^64-1 are not clamped.
 * Bounded: nesting depth JSON_DEPTH_MAX, members per object JSON_MEMBERS_MAX.
 */
#ifndef DSTRACE_JSONPARSE_H
#define DSTRACE_JSONPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_DEPTH_MAX 32
#define JSON_MEMBERS_MAX 4096 /* per object or array */

enum json_kind {
	JSON_NULL = 0,
	JSON_BOOL,
	JSON_NUMBER,
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT,
};

/* One node. Children of an array or object are linked through `next` (node indices, 0 ends
 * the list: node 0 is the root, never a child). */
struct json_node {
	uint8_t kind;	/* enum json_kind */
	bool boolean;	/* JSON_BOOL */
	uint32_t count; /* JSON_ARRAY, JSON_OBJECT: number of children */
	uint32_t first; /* first child */
	uint32_t next;	/* next sibling */
	uint32_t key;	/* member of an object: offset of its key in the string buffer */
	uint32_t key_len;
	uint32_t text;	/* JSON_STRING: decoded bytes; JSON_NUMBER: its literal text */
	uint32_t len;	/* length of text (a string may contain NUL bytes) */
};

struct json_doc {
	struct json_node *nodes;
	uint32_t nnodes, nodes_cap;
	char *strings; /* decoded strings and number literals, each NUL-terminated */
	size_t strings_len, strings_cap;
	const char *error; /* after a failed parse: what was wrong */
	size_t error_pos;  /* and the byte offset where */
};

void json_doc__init(struct json_doc *d);
void json_doc__free(struct json_doc *d);
/* Parse exactly one JSON value (surrounding whitespace allowed) from len bytes of text.
 * 0; -EINVAL with d->error and d->error_pos set; -ENOMEM; -E2BIG for input over 1 GiB. */
int json_doc__parse(struct json_doc *d, const char *text, size_t len);

const struct json_node *json_root(const struct json_doc *d);
/* First child of an array or object, and the one after a child; NULL at the end. */
const struct json_node *json_first(const struct json_doc *d, const struct json_node *n);
const struct json_node *json_next(const struct json_doc *d, const struct json_node *n);
/* Member key of a child of an object (NUL-terminated). */
const char *json_key(const struct json_doc *d, const struct json_node *member);
/* Member of an object by key; NULL if n is not an object, the key is absent, or it appears
 * more than once (a duplicate is ambiguous: treated as invalid). */
const struct json_node *json_get(const struct json_doc *d, const struct json_node *n,
				 const char *key);

/* Typed accessors: true with *out set when n has that type (n may be NULL). */
bool json_is_null(const struct json_node *n);
bool json_bool(const struct json_node *n, bool *out);
/* A non-negative integer (no sign, fraction or exponent) that fits in 64 bits. */
bool json_uint64(const struct json_doc *d, const struct json_node *n, uint64_t *out);
/* A string without NUL bytes, at most max_len bytes long (UTF-8, NUL-terminated). */
bool json_string(const struct json_doc *d, const struct json_node *n, size_t max_len,
		 const char **out);

#endif /* DSTRACE_JSONPARSE_H */
