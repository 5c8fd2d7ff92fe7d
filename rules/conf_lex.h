/* Tokens of sockd.conf.
 *
 * Dante's grammar is line-oriented in places (list values run to the end of
 * the line), so newlines are tokens.  "keyword:" is one token (TOK_KEY) so
 * that IPv6 literals, which contain colons, stay whole words. */
#ifndef SOCKD_CONF_LEX_H
#define SOCKD_CONF_LEX_H

#include <stddef.h>

enum tok_type {
	TOK_EOF,
	TOK_NEWLINE,
	TOK_WORD,
	TOK_KEY,      /* "from:" -> text "from" */
	TOK_LBRACE,
	TOK_RBRACE,
	TOK_OP,       /* = != < > <= >= */
	TOK_BAD,      /* a byte that cannot appear: NUL, control characters */
};

struct token {
	enum tok_type type;
	const char *text;   /* not NUL-terminated */
	size_t len;
	unsigned line, col;
};

struct lexer {
	const char *p, *end;
	unsigned line, col;
	struct token peeked;
	int have_peek;
};

void lex_init(struct lexer *lx, const char *text, size_t len);
struct token lex_next(struct lexer *lx);
struct token lex_peek(struct lexer *lx);

/* True when TEXT (LEN bytes) equals the NUL-terminated S. */
int tok_is(const struct token *t, const char *s);

#endif
