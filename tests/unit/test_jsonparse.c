// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The strict JSON reader under dstrace report: what RFC 8259 allows comes through exactly,
 * everything else is refused with a reason (json-c lets several of these through). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "jsonparse.h"
#include "unit.h"

static struct json_doc doc;

static int parse(const char *text)
{
	return json_doc__parse(&doc, text, strlen(text));
}

static void test_values(void)
{
	const struct json_node *root, *n;
	const char *s;
	uint64_t u;
	bool b;

	REQUIRE_TRUE(parse(" {\"a\":1,\"b\":\"x\",\"c\":true,\"d\":null,\"e\":[1,2,3],\"f\":{}}\r\n") ==
		     0);
	root = json_root(&doc);
	REQUIRE_TRUE(root && root->kind == JSON_OBJECT);
	ASSERT_UINT_EQ(root->count, 6);
	ASSERT_TRUE(json_uint64(&doc, json_get(&doc, root, "a"), &u) && u == 1);
	ASSERT_TRUE(json_string(&doc, json_get(&doc, root, "b"), 10, &s));
	ASSERT_STR_EQ(s, "x");
	ASSERT_TRUE(json_bool(json_get(&doc, root, "c"), &b) && b);
	ASSERT_TRUE(json_is_null(json_get(&doc, root, "d")));
	n = json_get(&doc, root, "e");
	REQUIRE_TRUE(n && n->kind == JSON_ARRAY);
	ASSERT_UINT_EQ(n->count, 3);
	u = 0;
	for (n = json_first(&doc, n); n; n = json_next(&doc, n)) {
		uint64_t v;

		ASSERT_TRUE(json_uint64(&doc, n, &v));
		u = u * 10 + v;
	}
	ASSERT_UINT_EQ(u, 123);
	n = json_get(&doc, root, "f");
	ASSERT_TRUE(n && n->kind == JSON_OBJECT && n->count == 0 && !json_first(&doc, n));
	ASSERT_TRUE(json_get(&doc, root, "missing") == NULL);
	ASSERT_STR_EQ(json_key(&doc, json_first(&doc, root)), "a");
	/* Wrong types read as absent. */
	ASSERT_TRUE(!json_uint64(&doc, json_get(&doc, root, "b"), &u));
	ASSERT_TRUE(!json_string(&doc, json_get(&doc, root, "a"), 10, &s));
	ASSERT_TRUE(!json_bool(json_get(&doc, root, "d"), &b));
	ASSERT_TRUE(json_get(&doc, json_get(&doc, root, "e"), "a") == NULL);
}

static void test_scalars_at_top(void)
{
	uint64_t u;

	ASSERT_INT_EQ(parse("42"), 0);
	ASSERT_TRUE(json_uint64(&doc, json_root(&doc), &u) && u == 42);
	ASSERT_INT_EQ(parse("\"\""), 0);
	ASSERT_INT_EQ(parse("[]"), 0);
	ASSERT_INT_EQ(parse("false"), 0);
}

static void test_strings(void)
{
	const char *s;

	REQUIRE_TRUE(parse("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"") == 0);
	ASSERT_TRUE(json_string(&doc, json_root(&doc), 100, &s));
	ASSERT_STR_EQ(s, "a\"b\\c/d\b\f\n\r\t");
	/* \u escapes become UTF-8, surrogate pairs included. */
	REQUIRE_TRUE(parse("\"\\u00e9\\u20AC\\ud83d\\ude00\"") == 0);
	ASSERT_TRUE(json_string(&doc, json_root(&doc), 100, &s));
	ASSERT_STR_EQ(s, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	/* Raw UTF-8 passes through. */
	REQUIRE_TRUE(parse("\"caf\xc3\xa9 \xf0\x9f\x98\x80\"") == 0);
	ASSERT_TRUE(json_string(&doc, json_root(&doc), 100, &s));
	ASSERT_STR_EQ(s, "caf\xc3\xa9 \xf0\x9f\x98\x80");
	/* A NUL inside is kept in the node, refused as a C string. */
	REQUIRE_TRUE(parse("\"a\\u0000b\"") == 0);
	ASSERT_UINT_EQ(json_root(&doc)->len, 3);
	ASSERT_TRUE(!json_string(&doc, json_root(&doc), 100, &s));
	/* Length limit. */
	REQUIRE_TRUE(parse("\"abcd\"") == 0);
	ASSERT_TRUE(json_string(&doc, json_root(&doc), 4, &s));
	ASSERT_TRUE(!json_string(&doc, json_root(&doc), 3, &s));
}

static void test_uint64(void)
{
	static const char *const refused[] = { "-1", "1.0", "1e3", "-0", "18446744073709551616",
					       "99999999999999999999" };
	uint64_t u;

	REQUIRE_TRUE(parse("18446744073709551615") == 0);
	ASSERT_TRUE(json_uint64(&doc, json_root(&doc), &u) && u == UINT64_MAX);
	REQUIRE_TRUE(parse("0") == 0);
	ASSERT_TRUE(json_uint64(&doc, json_root(&doc), &u) && u == 0);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		/* valid JSON numbers, but not counters */
		REQUIRE_TRUE(parse(refused[i]) == 0);
		unit_check(UNIT_AT(false), !json_uint64(&doc, json_root(&doc), &u),
			   "%s read as %llu", refused[i], (unsigned long long)u);
	}
}

static void test_duplicate_key(void)
{
	uint64_t u;

	REQUIRE_TRUE(parse("{\"a\":1,\"b\":2,\"a\":3}") == 0);
	ASSERT_TRUE(json_get(&doc, json_root(&doc), "a") == NULL);
	ASSERT_TRUE(json_uint64(&doc, json_get(&doc, json_root(&doc), "b"), &u) && u == 2);
}

static void test_refused(void)
{
	static const struct {
		const char *text, *error;
	} cases[] = {
		{ "", "expected a value" },
		{ "   ", "expected a value" },
		{ "{'a':1}", "expected a member name" },
		{ "{\"a\":NaN}", "expected a value" },
		{ "{\"a\":1,}", "expected a member name" },
		{ "[1,]", "expected a value" },
		{ "[1 2]", "expected ',' or ']'" },
		{ "{\"a\" 1}", "expected ':'" },
		{ "{\"a\":1", "expected ',' or '}'" },
		{ "/*c*/{}", "expected a value" },
		{ "{} x", "text after the value" },
		{ "{}{}", "text after the value" },
		{ "01", "leading zero in number" },
		{ "-", "invalid number" },
		{ "1.", "invalid fraction in number" },
		{ "1e", "invalid exponent in number" },
		{ "+1", "expected a value" },
		{ "tru", "invalid literal" },
		{ "nul", "invalid literal" },
		{ "\"abc", "unterminated string" },
		{ "\"a\tb\"", "control character in string" },
		{ "\"\\x\"", "invalid escape in string" },
		{ "\"\\u12zz\"", "invalid \\u escape" },
		{ "\"\\u12", "truncated \\u escape" },
		{ "\"\\ud800\"", "lone high surrogate" },
		{ "\"\\ud800\\u0041\"", "lone high surrogate" },
		{ "\"\\udc00\"", "lone low surrogate" },
		{ "\"\xff\"", "invalid UTF-8 in string" },
		{ "\"\xc0\xaf\"", "invalid UTF-8 in string" },	      /* overlong '/' */
		{ "\"\xed\xa0\x80\"", "invalid UTF-8 in string" },    /* a surrogate */
		{ "\"\xf4\x90\x80\x80\"", "invalid UTF-8 in string" }, /* past U+10FFFF */
		{ "\"\xe2\x82\"", "invalid UTF-8 in string" },	      /* cut short */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int err = parse(cases[i].text);

		unit_check(UNIT_AT(false), err == -EINVAL, "'%s' parsed (%d)", cases[i].text, err);
		if (err == -EINVAL)
			unit_check(UNIT_AT(false), !strcmp(doc.error, cases[i].error),
				   "'%s': expected \"%s\", got \"%s\"", cases[i].text,
				   cases[i].error, doc.error);
	}
}

static void test_error_position(void)
{
	ASSERT_INT_EQ(parse("{\"a\":1,\"b\":x}"), -EINVAL);
	ASSERT_UINT_EQ(doc.error_pos, 11);
}

static void test_depth(void)
{
	char deep[2 * JSON_DEPTH_MAX + 8];
	int n = 0;

	for (int i = 0; i < JSON_DEPTH_MAX; i++)
		deep[n++] = '[';
	for (int i = 0; i < JSON_DEPTH_MAX; i++)
		deep[n++] = ']';
	deep[n] = '\0';
	ASSERT_INT_EQ(parse(deep), 0);

	n = 0;
	for (int i = 0; i <= JSON_DEPTH_MAX; i++)
		deep[n++] = '[';
	for (int i = 0; i <= JSON_DEPTH_MAX; i++)
		deep[n++] = ']';
	deep[n] = '\0';
	ASSERT_INT_EQ(parse(deep), -EINVAL);
	ASSERT_STR_EQ(doc.error, "nested too deep");
}

static void test_members_max(void)
{
	size_t size = JSON_MEMBERS_MAX * 2 + 8;
	char *text = malloc(size);
	size_t n = 0;

	REQUIRE_TRUE(text != NULL);
	text[n++] = '[';
	for (int i = 0; i < JSON_MEMBERS_MAX; i++) {
		text[n++] = '0';
		text[n++] = ',';
	}
	text[n - 1] = ']';
	text[n] = '\0';
	ASSERT_INT_EQ(json_doc__parse(&doc, text, n), 0);
	ASSERT_UINT_EQ(json_root(&doc)->count, JSON_MEMBERS_MAX);
	memcpy(text + n - 1, ",0]", 4);
	ASSERT_INT_EQ(json_doc__parse(&doc, text, n + 2), -EINVAL);
	ASSERT_STR_EQ(doc.error, "too many members");
	free(text);
}

/* The document is reused from line to line: a failed parse leaves nothing behind. */
static void test_reuse(void)
{
	const char *s;

	ASSERT_INT_EQ(parse("{\"a\":[1,2,{\"b\":\"c\"}]}"), 0);
	ASSERT_INT_EQ(parse("{\"a\":"), -EINVAL);
	ASSERT_INT_EQ(parse("\"z\""), 0);
	ASSERT_UINT_EQ(doc.nnodes, 1);
	ASSERT_TRUE(json_string(&doc, json_root(&doc), 1, &s));
	ASSERT_STR_EQ(s, "z");
}

static int cleanup(void)
{
	json_doc__free(&doc);
	return 0;
}

static const CU_TestInfo tests[] = {
	{ "values", test_values },
	{ "scalars at the top", test_scalars_at_top },
	{ "strings and escapes", test_strings },
	{ "unsigned 64-bit integers", test_uint64 },
	{ "duplicate keys are ambiguous", test_duplicate_key },
	{ "refused, with the reason", test_refused },
	{ "error position", test_error_position },
	{ "nesting depth", test_depth },
	{ "members per container", test_members_max },
	{ "document reused", test_reuse },
	CU_TEST_INFO_NULL,
};

int register_jsonparse_tests(void)
{
	return unit_add_suite("jsonparse", tests, cleanup);
}
