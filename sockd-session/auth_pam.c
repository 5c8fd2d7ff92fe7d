/* PAM authentication, after OpenSSH's auth-pam.c: a conversation that
 * answers only what it knows, owns its memory, and wipes the password. */
#include <dlfcn.h>
#include <errno.h>
#include <security/pam_appl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auth_pam.h"
#include "log.h"

/* libpam's entry points, resolved once.  RTLD_DEFAULT first, so that an
 * interposed libpam (pam_wrapper in the tests) is the one called. */
static struct {
	bool loaded;
	int (*start)(const char *, const char *, const struct pam_conv *,
		     pam_handle_t **);
	int (*end)(pam_handle_t *, int);
	int (*set_item)(pam_handle_t *, int, const void *);
	int (*get_item)(const pam_handle_t *, int, const void **);
	int (*authenticate)(pam_handle_t *, int);
	int (*acct_mgmt)(pam_handle_t *, int);
	int (*setcred)(pam_handle_t *, int);
	int (*open_session)(pam_handle_t *, int);
	int (*close_session)(pam_handle_t *, int);
	const char *(*strerror)(pam_handle_t *, int);
} pam;

static pam_handle_t *session_handle;

static void *sym(void *lib, const char *name)
{
	void *p = dlsym(RTLD_DEFAULT, name);
	return p ? p : dlsym(lib, name);
}

static int load_pam(char *err, size_t errlen)
{
	if (pam.loaded)
		return 0;
	void *lib = dlopen("libpam.so.0", RTLD_NOW | RTLD_GLOBAL);
	if (!lib) {
		snprintf(err, errlen, "cannot load libpam: %s", dlerror());
		return -1;
	}
	*(void **)&pam.start = sym(lib, "pam_start");
	*(void **)&pam.end = sym(lib, "pam_end");
	*(void **)&pam.set_item = sym(lib, "pam_set_item");
	*(void **)&pam.get_item = sym(lib, "pam_get_item");
	*(void **)&pam.authenticate = sym(lib, "pam_authenticate");
	*(void **)&pam.acct_mgmt = sym(lib, "pam_acct_mgmt");
	*(void **)&pam.setcred = sym(lib, "pam_setcred");
	*(void **)&pam.open_session = sym(lib, "pam_open_session");
	*(void **)&pam.close_session = sym(lib, "pam_close_session");
	*(void **)&pam.strerror = sym(lib, "pam_strerror");
	if (!pam.start || !pam.end || !pam.set_item || !pam.get_item ||
	    !pam.authenticate || !pam.acct_mgmt || !pam.setcred ||
	    !pam.open_session || !pam.close_session || !pam.strerror) {
		snprintf(err, errlen, "libpam lacks an entry point");
		return -1;
	}
	pam.loaded = true;
	return 0;
}

bool auth_pam_service_exists(const char *service)
{
	static const char *const dirs[] = { "/etc/pam.d", "/usr/lib/pam.d",
					    "/lib/pam.d" };
	char path[512];

	if (!*service || strchr(service, '/') || !strcmp(service, ".") ||
	    !strcmp(service, ".."))
		return false;
	/* pam_wrapper (tests) reads services from a directory of its own */
	const char *wrapped = getenv("PAM_WRAPPER_SERVICE_DIR");
	if (wrapped && getenv("PAM_WRAPPER")) {
		snprintf(path, sizeof(path), "%s/%s", wrapped, service);
		return access(path, F_OK) == 0;
	}
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dirs[i], service);
		if (access(path, F_OK) == 0)
			return true;
	}
	return false;
}

struct conv_data {
	const char *user;
	const char *password;
	int passwords_given;
};

static void free_responses(struct pam_response *r, int n)
{
	for (int i = 0; i < n; i++) {
		if (r[i].resp) {
			explicit_bzero(r[i].resp, strlen(r[i].resp));
			free(r[i].resp);
		}
	}
	free(r);
}

/* Answers one echo-off prompt with the password and echo-on prompts with
 * the user name; logs messages; refuses anything else (a second password
 * prompt: an OTP, a "new password") so the login fails instead of
 * hanging or guessing. */
static int conversation(int n, const struct pam_message **msg,
			struct pam_response **out, void *appdata)
{
	struct conv_data *cd = appdata;
	char esc[1024];

	if (n <= 0 || n > PAM_MAX_NUM_MSG)
		return PAM_CONV_ERR;
	struct pam_response *r = calloc((size_t)n, sizeof(*r));
	if (!r)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++) {
		const char *text = msg[i]->msg ? msg[i]->msg : "";
		switch (msg[i]->msg_style) {
		case PAM_PROMPT_ECHO_OFF:
			if (!cd->password || cd->passwords_given++)
				goto fail;
			r[i].resp = strdup(cd->password);
			break;
		case PAM_PROMPT_ECHO_ON:
			r[i].resp = strdup(cd->user);
			break;
		case PAM_ERROR_MSG:
		case PAM_TEXT_INFO:
			log_escape(text, strlen(text), esc, sizeof(esc));
			log_msg(LOGL_INFO, "pam: user=%s message=\"%s\"", cd->user,
				esc);
			continue;
		default:
			goto fail;
		}
		if (!r[i].resp)
			goto fail;
	}
	*out = r;
	return PAM_SUCCESS;
fail:
	free_responses(r, n);
	return PAM_CONV_ERR;
}

static int failed(pam_handle_t *h, int rc, const char *step,
		  struct pam_result *res)
{
	snprintf(res->reason, sizeof(res->reason), "%s: %s", step,
		 pam.strerror(h, rc));
	pam.end(h, rc);
	return -1;
}

int auth_pam(const struct pam_request *rq, struct pam_result *res)
{
	struct conv_data cd = { rq->user, rq->password, 0 };
	struct pam_conv conv = { conversation, &cd };
	pam_handle_t *h = NULL;
	const void *item = NULL;
	int rc;

	memset(res, 0, sizeof(*res));
	if (!auth_pam_service_exists(rq->service)) {
		snprintf(res->reason, sizeof(res->reason), "PAM service \"%s\" "
			 "has no file in /etc/pam.d: refusing rather than "
			 "falling back to \"other\"", rq->service);
		return -1;
	}
	if (load_pam(res->reason, sizeof(res->reason)))
		return -1;
	rc = pam.start(rq->service, rq->user, &conv, &h);
	if (rc != PAM_SUCCESS) {
		snprintf(res->reason, sizeof(res->reason), "pam_start: error %d",
			 rc);
		return -1;
	}
	if ((rc = pam.set_item(h, PAM_RHOST, rq->rhost)) != PAM_SUCCESS ||
	    (rc = pam.set_item(h, PAM_RUSER, PAM_ADDRESS_USER)) != PAM_SUCCESS)
		return failed(h, rc, "pam_set_item", res);
	rc = pam.authenticate(h, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
	if (rc != PAM_SUCCESS)
		return failed(h, rc, "pam_authenticate", res);
	rc = pam.acct_mgmt(h, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
	if (rc == PAM_NEW_AUTHTOK_REQD)
		return failed(h, rc, "pam_acct_mgmt (the password must be "
			      "changed, which a proxy cannot do)", res);
	if (rc != PAM_SUCCESS)
		return failed(h, rc, "pam_acct_mgmt", res);
	rc = pam.get_item(h, PAM_USER, &item);
	if (rc != PAM_SUCCESS || !item || !*(const char *)item)
		return failed(h, rc == PAM_SUCCESS ? PAM_USER_UNKNOWN : rc,
			      "pam_get_item(PAM_USER)", res);
	snprintf(res->user, sizeof(res->user), "%s", (const char *)item);
	if (rq->open_session) {
		if ((rc = pam.setcred(h, PAM_ESTABLISH_CRED)) != PAM_SUCCESS)
			return failed(h, rc, "pam_setcred", res);
		if ((rc = pam.open_session(h, 0)) != PAM_SUCCESS) {
			pam.setcred(h, PAM_DELETE_CRED);
			return failed(h, rc, "pam_open_session", res);
		}
		session_handle = h;
		return 0;
	}
	pam.end(h, PAM_SUCCESS);
	return 0;
}

int auth_pam_session_fork(int client_fd)
{
	if (!session_handle)
		return 0;
	pid_t child = fork();
	if (child < 0)
		return -1;
	if (child == 0) {
		session_handle = NULL;   /* the parent owns it */
		return 0;
	}
	/* The root parent: it holds nothing of the client's but the PAM
	 * session, and ends it exactly once when the relay ends. */
	close(client_fd);
	signal(SIGTERM, SIG_IGN);    /* a stop reaches the child; we wait */
	int status = 0;
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	int rc = pam.close_session(session_handle, 0);
	if (rc != PAM_SUCCESS)
		log_msg(LOGL_WARNING, "pam_close_session: %s",
			pam.strerror(session_handle, rc));
	pam.setcred(session_handle, PAM_DELETE_CRED);
	pam.end(session_handle, rc);
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}
