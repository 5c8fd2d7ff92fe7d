/* Authentication method names and the properties the matcher needs. */
#include <string.h>

#include "methods.h"

static const char *const names[METHOD_COUNT] = {
	[METHOD_NONE] = "none",
	[METHOD_USERNAME] = "username",
	[METHOD_PAM_USERNAME] = "pam.username",
	[METHOD_PAM_ADDRESS] = "pam.address",
	[METHOD_GSSAPI] = "gssapi",
};

const char *method_name(enum method m)
{
	return (unsigned)m < METHOD_COUNT ? names[m] : "?";
}

int method_lookup(const char *name, enum method *m)
{
	for (unsigned i = 0; i < METHOD_COUNT; i++) {
		if (strcmp(name, names[i]) == 0) {
			*m = (enum method)i;
			return 0;
		}
	}
	if (strcmp(name, "pam") == 0) {  /* Dante's deprecated alias */
		*m = METHOD_PAM_USERNAME;
		return 0;
	}
	return -1;
}

bool method_list_has(const struct method_list *l, enum method m)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->m[i] == m)
			return true;
	return false;
}

bool method_yields_user(enum method m)
{
	return m == METHOD_USERNAME || m == METHOD_PAM_USERNAME ||
	       m == METHOD_GSSAPI;
}

int method_wire(enum method m)
{
	switch (m) {
	case METHOD_GSSAPI:
		return 0x01;
	case METHOD_USERNAME:
	case METHOD_PAM_USERNAME:
		return 0x02;
	case METHOD_NONE:
	case METHOD_PAM_ADDRESS:  /* no credentials on the wire */
	default:
		return 0x00;
	}
}
