/* sockd.conf lexer: one pass, no allocation, linear in the input. */
#include <string.h>

#include "conf_lex.h"

void lex_init(struct lexer *lx, const char *text, size_t len)
{
	lx->p = text;
	lx->end = text + len;
	lx->line = 1;
	lx->col = 1;
	lx->have_peek = 0;
}

int tok_is(const struct token *t, const char *s)
{
	return strlen(s) == t->len && memcmp(t->text, s, t->len) == 0;
}

static void advance(struct lexer *lx, size_t n)
{
	lx->p += n;
	lx->col += (unsigned)n;
}

/* Character classes by table: the lexer looks at every byte of the file,
 * and a file is parsed once per connection. */
enum { C_SPACE = 1, C_WORD = 2, C_HEX = 4, C_KEY = 8, C_KEY1 = 16 };

static const unsigned char cls[256] = {
	[' '] = C_SPACE, ['\t'] = C_SPACE, ['\r'] = C_SPACE, ['\f'] = C_SPACE,
	['\v'] = C_SPACE,
#define R3(a) [a] = C_WORD | C_HEX | C_KEY
	R3('0'), R3('1'), R3('2'), R3('3'), R3('4'), R3('5'), R3('6'), R3('7'),
	R3('8'), R3('9'),
#define L(a) [a] = C_WORD | C_KEY | C_KEY1
#define LH(a) [a] = C_WORD | C_HEX | C_KEY | C_KEY1
	LH('a'), LH('b'), LH('c'), LH('d'), LH('e'), LH('f'), L('g'), L('h'),
	L('i'), L('j'), L('k'), L('l'), L('m'), L('n'), L('o'), L('p'), L('q'),
	L('r'), L('s'), L('t'), L('u'), L('v'), L('w'), L('x'), L('y'), L('z'),
#define U(a) [a] = C_WORD
#define UH(a) [a] = C_WORD | C_HEX
	UH('A'), UH('B'), UH('C'), UH('D'), UH('E'), UH('F'), U('G'), U('H'),
	U('I'), U('J'), U('K'), U('L'), U('M'), U('N'), U('O'), U('P'), U('Q'),
	U('R'), U('S'), U('T'), U('U'), U('V'), U('W'), U('X'), U('Y'), U('Z'),
	['.'] = C_WORD | C_KEY, ['_'] = C_WORD | C_KEY, ['-'] = C_WORD | C_KEY,
	['"'] = C_WORD, ['$'] = C_WORD, ['%'] = C_WORD, ['&'] = C_WORD,
	['\''] = C_WORD, ['('] = C_WORD, [')'] = C_WORD, ['*'] = C_WORD,
	['+'] = C_WORD, [','] = C_WORD, ['/'] = C_WORD, [':'] = C_WORD,
	[';'] = C_WORD, ['?'] = C_WORD, ['@'] = C_WORD, ['['] = C_WORD,
	['\\'] = C_WORD, [']'] = C_WORD, ['^'] = C_WORD, ['`'] = C_WORD,
	['|'] = C_WORD, ['~'] = C_WORD,
#undef R3
#undef L
#undef LH
#undef U
#undef UH
};

static int is_space(char c)
{
	return cls[(unsigned char)c] & C_SPACE;
}

/* Everything printable but blanks and "{}#=<>!" */
static int is_word_char(unsigned char c)
{
	return cls[c] & C_WORD;
}

/* Keywords are lower-case identifiers: letters, digits, '.', '_'
 * (timeout.io.tcp).  Upper case stays a value: "FILE:/etc/sockd.keytab". */
static int is_keyword_text(const char *s, size_t n)
{
	if (n == 0 || !(cls[(unsigned char)s[0]] & C_KEY1))
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!(cls[(unsigned char)s[i]] & C_KEY))
			return 0;
	return 1;
}

/* Hex-only identifiers ("fe80", "abcd") begin IPv6 literals, not keywords:
 * "fe80::1" must stay one word. */
static int is_hex_text(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!(cls[(unsigned char)s[i]] & C_HEX))
			return 0;
	return 1;
}

static void skip_blank(struct lexer *lx)
{
	for (;;) {
		while (lx->p < lx->end && is_space(*lx->p))
			advance(lx, 1);
		if (lx->p < lx->end && *lx->p == '#') {
			while (lx->p < lx->end && *lx->p != '\n')
				advance(lx, 1);
			continue;
		}
		/* backslash-newline joins lines */
		if (lx->p + 1 < lx->end && lx->p[0] == '\\' && lx->p[1] == '\n') {
			lx->p += 2;
			lx->line++;
			lx->col = 1;
			continue;
		}
		if (lx->p + 2 < lx->end && lx->p[0] == '\\' && lx->p[1] == '\r' &&
		    lx->p[2] == '\n') {
			lx->p += 3;
			lx->line++;
			lx->col = 1;
			continue;
		}
		return;
	}
}

static struct token scan(struct lexer *lx)
{
	struct token t = { TOK_EOF, lx->p, 0, 0, 0 };

	skip_blank(lx);
	t.text = lx->p;
	t.line = lx->line;
	t.col = lx->col;
	if (lx->p >= lx->end)
		return t;
	unsigned char c = (unsigned char)*lx->p;
	t.len = 1;
	if (c == '\n') {
		t.type = TOK_NEWLINE;
		lx->p++;
		lx->line++;
		lx->col = 1;
		return t;
	}
	if (c == '{' || c == '}') {
		t.type = c == '{' ? TOK_LBRACE : TOK_RBRACE;
		advance(lx, 1);
		return t;
	}
	if (c == '=' || c == '<' || c == '>' || c == '!') {
		t.type = TOK_OP;
		if (lx->p + 1 < lx->end && lx->p[1] == '=')
			t.len = 2;
		advance(lx, t.len);
		return t;
	}
	if (!is_word_char(c)) {
		t.type = TOK_BAD;
		advance(lx, 1);
		return t;
	}
	size_t n = 0;
	while (lx->p + n < lx->end && is_word_char((unsigned char)lx->p[n]))
		n++;
	/* "keyword:" or "keyword:value" (no blank after the colon) */
	const char *colon = memchr(lx->p, ':', n);
	if (colon) {
		size_t klen = (size_t)(colon - lx->p);
		if (is_keyword_text(lx->p, klen) && !is_hex_text(lx->p, klen)) {
			t.type = TOK_KEY;
			t.len = klen;
			advance(lx, klen + 1);
			return t;
		}
	}
	t.type = TOK_WORD;
	t.len = n;
	advance(lx, n);
	/* "keyword :" with a blank before a lone colon, as Dante allows */
	if (is_keyword_text(t.text, t.len) && !is_hex_text(t.text, t.len)) {
		const char *q = lx->p;
		while (q < lx->end && is_space(*q))
			q++;
		if (q < lx->end && *q == ':' &&
		    (q + 1 == lx->end || !is_word_char((unsigned char)q[1]))) {
			lx->col += (unsigned)(q + 1 - lx->p);
			lx->p = q + 1;
			t.type = TOK_KEY;
		}
	}
	return t;
}

struct token lex_next(struct lexer *lx)
{
	if (lx->have_peek) {
		lx->have_peek = 0;
		return lx->peeked;
	}
	return scan(lx);
}

struct token lex_peek(struct lexer *lx)
{
	if (!lx->have_peek) {
		lx->peeked = scan(lx);
		lx->have_peek = 1;
	}
	return lx->peeked;
}
