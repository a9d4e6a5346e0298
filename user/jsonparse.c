// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Recursive descent over one value; nodes are indices into a growing array (it moves when
 * it grows, so nothing holds a pointer into it during the parse). Every decoded string or
 * number literal fits in len + 1 bytes: escapes only shrink, and each string gives up two
 * quotes, each number but the last a separator, for the NUL terminators.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "jsonparse.h"

#define JSON_TEXT_MAX (1u << 30)

struct parser {
	struct json_doc *d;
	const char *start, *p, *end;
	int depth;
};

void json_doc__init(struct json_doc *d)
{
	memset(d, 0, sizeof(*d));
}

void json_doc__free(struct json_doc *d)
{
	free(d->nodes);
	free(d->strings);
	memset(d, 0, sizeof(*d));
}

static int fail(struct parser *ps, const char *what)
{
	ps->d->error = what;
	ps->d->error_pos = ps->p - ps->start;
	return -EINVAL;
}

static int new_node(struct parser *ps, enum json_kind kind, uint32_t *idx)
{
	struct json_doc *d = ps->d;

	if (d->nnodes == d->nodes_cap) {
		uint32_t cap = d->nodes_cap ? d->nodes_cap * 2 : 64;
		struct json_node *nodes = realloc(d->nodes, cap * sizeof(*nodes));

		if (!nodes)
			return -ENOMEM;
		d->nodes = nodes;
		d->nodes_cap = cap;
	}
	*idx = d->nnodes++;
	memset(&d->nodes[*idx], 0, sizeof(d->nodes[*idx]));
	d->nodes[*idx].kind = kind;
	return 0;
}

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->end &&
	       (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static void put_byte(struct parser *ps, char c)
{
	/* Cannot overflow: see the comment at the top. */
	ps->d->strings[ps->d->strings_len++] = c;
}

static void put_utf8(struct parser *ps, uint32_t cp)
{
	if (cp < 0x80) {
		put_byte(ps, cp);
	} else if (cp < 0x800) {
		put_byte(ps, 0xc0 | cp >> 6);
		put_byte(ps, 0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		put_byte(ps, 0xe0 | cp >> 12);
		put_byte(ps, 0x80 | (cp >> 6 & 0x3f));
		put_byte(ps, 0x80 | (cp & 0x3f));
	} else {
		put_byte(ps, 0xf0 | cp >> 18);
		put_byte(ps, 0x80 | (cp >> 12 & 0x3f));
		put_byte(ps, 0x80 | (cp >> 6 & 0x3f));
		put_byte(ps, 0x80 | (cp & 0x3f));
	}
}

static int hex4(struct parser *ps, uint32_t *out)
{
	uint32_t v = 0;

	if (ps->end - ps->p < 4)
		return fail(ps, "truncated \\u escape");
	for (int i = 0; i < 4; i++) {
		char c = *ps->p++;

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return fail(ps, "invalid \\u escape");
	}
	*out = v;
	return 0;
}

/* Length of the valid UTF-8 sequence at p (first byte >= 0x80), 0 if invalid. */
static int utf8_len(const unsigned char *p, const unsigned char *end)
{
	unsigned char c = p[0], lo = 0x80, hi = 0xbf;
	int n;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (end - p < n)
		return 0;
	if (c == 0xe0)
		lo = 0xa0; /* overlong */
	else if (c == 0xed)
		hi = 0x9f; /* surrogates */
	else if (c == 0xf0)
		lo = 0x90; /* overlong */
	else if (c == 0xf4)
		hi = 0x8f; /* beyond U+10FFFF */
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (int i = 2; i < n; i++) {
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	}
	return n;
}

/* At the opening quote; decodes into the string buffer. */
static int parse_string(struct parser *ps, uint32_t *text, uint32_t *len)
{
	size_t begin = ps->d->strings_len;
	int err;

	ps->p++;
	for (;;) {
		unsigned char c;

		if (ps->p >= ps->end)
			return fail(ps, "unterminated string");
		c = *ps->p;
		if (c == '"') {
			ps->p++;
			break;
		}
		if (c < 0x20)
			return fail(ps, "control character in string");
		if (c >= 0x80) {
			int n = utf8_len((const unsigned char *)ps->p, (const unsigned char *)ps->end);

			if (!n)
				return fail(ps, "invalid UTF-8 in string");
			while (n--)
				put_byte(ps, *ps->p++);
			continue;
		}
		ps->p++;
		if (c != '\\') {
			put_byte(ps, c);
			continue;
		}
		if (ps->p >= ps->end)
			return fail(ps, "unterminated string");
		c = *ps->p++;
		switch (c) {
		case '"':
		case '\\':
		case '/':
			put_byte(ps, c);
			break;
		case 'b':
			put_byte(ps, '\b');
			break;
		case 'f':
			put_byte(ps, '\f');
			break;
		case 'n':
			put_byte(ps, '\n');
			break;
		case 'r':
			put_byte(ps, '\r');
			break;
		case 't':
			put_byte(ps, '\t');
			break;
		case 'u': {
			uint32_t cp, lo;

			err = hex4(ps, &cp);
			if (err)
				return err;
			if (cp >= 0xdc00 && cp <= 0xdfff)
				return fail(ps, "lone low surrogate");
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u')
					return fail(ps, "lone high surrogate");
				ps->p += 2;
				err = hex4(ps, &lo);
				if (err)
					return err;
				if (lo < 0xdc00 || lo > 0xdfff)
					return fail(ps, "lone high surrogate");
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			put_utf8(ps, cp);
			break;
		}
		default:
			ps->p--;
			return fail(ps, "invalid escape in string");
		}
	}
	*text = begin;
	*len = ps->d->strings_len - begin;
	put_byte(ps, '\0');
	return 0;
}

static bool is_digit(const struct parser *ps)
{
	return ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9';
}

static int parse_number(struct parser *ps, struct json_node *n)
{
	const char *begin = ps->p;

	if (*ps->p == '-')
		ps->p++;
	if (!is_digit(ps))
		return fail(ps, "invalid number");
	if (*ps->p == '0') {
		ps->p++;
		if (is_digit(ps))
			return fail(ps, "leading zero in number");
	} else {
		while (is_digit(ps))
			ps->p++;
	}
	if (ps->p < ps->end && *ps->p == '.') {
		ps->p++;
		if (!is_digit(ps))
			return fail(ps, "invalid fraction in number");
		while (is_digit(ps))
			ps->p++;
	}
	if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
		ps->p++;
		if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
			ps->p++;
		if (!is_digit(ps))
			return fail(ps, "invalid exponent in number");
		while (is_digit(ps))
			ps->p++;
	}
	n->text = ps->d->strings_len;
	n->len = ps->p - begin;
	memcpy(ps->d->strings + ps->d->strings_len, begin, n->len);
	ps->d->strings_len += n->len;
	put_byte(ps, '\0');
	return 0;
}

static int parse_literal(struct parser *ps, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n))
		return fail(ps, "invalid literal");
	ps->p += n;
	return 0;
}

static int parse_value(struct parser *ps, uint32_t *idx);

/* At '[' or '{'. */
static int parse_container(struct parser *ps, bool object, uint32_t idx)
{
	char close = object ? '}' : ']';
	uint32_t last = 0, count = 0;
	int err;

	if (++ps->depth > JSON_DEPTH_MAX)
		return fail(ps, "nested too deep");
	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		ps->depth--;
		return 0;
	}
	for (;;) {
		uint32_t key = 0, key_len = 0, child;

		if (++count > JSON_MEMBERS_MAX)
			return fail(ps, "too many members");
		skip_ws(ps);
		if (object) {
			if (ps->p >= ps->end || *ps->p != '"')
				return fail(ps, "expected a member name");
			err = parse_string(ps, &key, &key_len);
			if (err)
				return err;
			skip_ws(ps);
			if (ps->p >= ps->end || *ps->p != ':')
				return fail(ps, "expected ':'");
			ps->p++;
			skip_ws(ps);
		}
		err = parse_value(ps, &child);
		if (err)
			return err;
		ps->d->nodes[child].key = key;
		ps->d->nodes[child].key_len = key_len;
		if (last)
			ps->d->nodes[last].next = child;
		else
			ps->d->nodes[idx].first = child;
		last = child;
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == close) {
			ps->p++;
			break;
		}
		return fail(ps, object ? "expected ',' or '}'" : "expected ',' or ']'");
	}
	ps->d->nodes[idx].count = count;
	ps->depth--;
	return 0;
}

/* At the first byte of a value (whitespace skipped). */
static int parse_value(struct parser *ps, uint32_t *idx)
{
	struct json_node tmp = {};
	int err;

	if (ps->p >= ps->end)
		return fail(ps, "expected a value");
	switch (*ps->p) {
	case '{':
	case '[':
		err = new_node(ps, *ps->p == '{' ? JSON_OBJECT : JSON_ARRAY, idx);
		return err ? err : parse_container(ps, *ps->p == '{', *idx);
	case '"':
		err = parse_string(ps, &tmp.text, &tmp.len);
		tmp.kind = JSON_STRING;
		break;
	case 't':
		err = parse_literal(ps, "true");
		tmp.kind = JSON_BOOL;
		tmp.boolean = true;
		break;
	case 'f':
		err = parse_literal(ps, "false");
		tmp.kind = JSON_BOOL;
		break;
	case 'n':
		err = parse_literal(ps, "null");
		tmp.kind = JSON_NULL;
		break;
	default:
		if (*ps->p != '-' && (*ps->p < '0' || *ps->p > '9'))
			return fail(ps, "expected a value");
		err = parse_number(ps, &tmp);
		tmp.kind = JSON_NUMBER;
		break;
	}
	if (err)
		return err;
	err = new_node(ps, tmp.kind, idx);
	if (err)
		return err;
	ps->d->nodes[*idx] = tmp;
	return 0;
}

int json_doc__parse(struct json_doc *d, const char *text, size_t len)
{
	struct parser ps = { .d = d, .start = text, .p = text, .end = text + len };
	uint32_t root;
	int err;

	d->nnodes = 0;
	d->strings_len = 0;
	d->error = NULL;
	d->error_pos = 0;
	if (len > JSON_TEXT_MAX)
		return -E2BIG;
	if (d->strings_cap < len + 1) {
		char *s = realloc(d->strings, len + 1);

		if (!s)
			return -ENOMEM;
		d->strings = s;
		d->strings_cap = len + 1;
	}
	skip_ws(&ps);
	err = parse_value(&ps, &root);
	if (err)
		return err;
	skip_ws(&ps);
	if (ps.p != ps.end)
		return fail(&ps, "text after the value");
	return 0;
}

const struct json_node *json_root(const struct json_doc *d)
{
	return d->nnodes ? &d->nodes[0] : NULL;
}

const struct json_node *json_first(const struct json_doc *d, const struct json_node *n)
{
	if (!n || (n->kind != JSON_ARRAY && n->kind != JSON_OBJECT) || !n->first)
		return NULL;
	return &d->nodes[n->first];
}

const struct json_node *json_next(const struct json_doc *d, const struct json_node *n)
{
	return n && n->next ? &d->nodes[n->next] : NULL;
}

const char *json_key(const struct json_doc *d, const struct json_node *member)
{
	return d->strings + member->key;
}

const struct json_node *json_get(const struct json_doc *d, const struct json_node *n,
				 const char *key)
{
	const struct json_node *found = NULL;
	size_t key_len = strlen(key);

	if (!n || n->kind != JSON_OBJECT)
		return NULL;
	for (const struct json_node *m = json_first(d, n); m; m = json_next(d, m)) {
		if (m->key_len == key_len && !memcmp(d->strings + m->key, key, key_len)) {
			if (found)
				return NULL;
			found = m;
		}
	}
	return found;
}

bool json_is_null(const struct json_node *n)
{
	return n && n->kind == JSON_NULL;
}

bool json_bool(const struct json_node *n, bool *out)
{
	if (!n || n->kind != JSON_BOOL)
		return false;
	*out = n->boolean;
	return true;
}

bool json_uint64(const struct json_doc *d, const struct json_node *n, uint64_t *out)
{
	const char *s;
	uint64_t v = 0;

	if (!n || n->kind != JSON_NUMBER)
		return false;
	s = d->strings + n->text;
	for (uint32_t i = 0; i < n->len; i++) {
		unsigned int digit = s[i] - '0';

		if (digit > 9) /* '-', '.', 'e': not a non-negative integer */
			return false;
		if (v > (UINT64_MAX - digit) / 10)
			return false;
		v = v * 10 + digit;
	}
	*out = v;
	return true;
}

bool json_string(const struct json_doc *d, const struct json_node *n, size_t max_len,
		 const char **out)
{
	const char *s;

	if (!n || n->kind != JSON_STRING || n->len > max_len)
		return false;
	s = d->strings + n->text;
	if (memchr(s, '\0', n->len))
		return false;
	*out = s;
	return true;
}
