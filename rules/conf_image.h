/* The compiled rules image: a loaded struct conf saved to disk so that a
 * session can take it without parsing the text again.
 *
 * Every connection starts a new process that needs the rules before it
 * reads a byte; parsing costs about 400 ns per rule (4 ms for 10 000
 * rules).  `sockd-check --compile` writes FILE.compiled next to the rules
 * file: the parsed structures with pointers stored as offsets, so loading
 * is one read(), a bounds check and a relocation of each pointer.
 *
 * The image is only a cache of the text.  It is used when all of this
 * holds, and otherwise the text is parsed (the answer is the same, only
 * slower):
 *   - it is a regular file owned by the loading user (root), writable by
 *     nobody else: whoever can write it decides the policy;
 *   - its header names this build (format version, program version and
 *     the layout of the structures);
 *   - the rules file is still the one it was made from: same device,
 *     inode, size, modification and change time (the change time cannot
 *     be set by a user, and the writer waits until the clock has moved
 *     past it, so a later edit always shows);
 *   - every pointer, count and enumeration in it is in range. */
#ifndef SOCKD_CONF_IMAGE_H
#define SOCKD_CONF_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "conf.h"

/* The size of an image's header; the body follows it. */
size_t conf_image_header_size(void);

/* FILE + ".compiled", into BUF.  Returns -1 when it does not fit. */
int conf_image_path(const char *conf_file, char *buf, size_t len);

/* Writes the image of C, which was loaded from the file SOURCE describes,
 * atomically (a temporary file renamed over IMAGE).  Returns 0, or -1
 * with ERR. */
int conf_image_write(const struct conf *c, const struct stat *source,
		     const char *image, char *err, size_t errlen);

/* Loads CONF_FILE and writes its image to IMAGE, making sure that the
 * text it read is the text the recorded identity describes.  Returns the
 * loaded conf; NULL when the rules file has errors (in *DIAGS) or the
 * image could not be written (ERR, with no error in *DIAGS). */
struct conf *conf_image_compile(const char *conf_file, const char *image,
				struct conf_diags *diags, char *err,
				size_t errlen);

/* Loads IMAGE if it is a valid, current image of CONF_FILE.  Returns the
 * conf (free it with conf_free), or NULL with the reason in WHY ("" when
 * there is simply no image). */
struct conf *conf_image_load(const char *conf_file, const char *image,
			     char *why, size_t whylen);

/* Frees a conf that conf_image_load returned (conf_free calls it). */
void conf_image_free(struct conf *c);

/* For tests and fuzzing: recomputes the checksum of IMAGE after damage
 * done on purpose, so that the checks behind it are reached.  0 or -1. */
int conf_image_reseal(const char *image);

/* What both programs call: the image when it is current, else the text
 * (conf_load).  *USED_IMAGE tells which; WHY says why the image was not
 * used ("" when there was none).  From the image the rules are read as
 * decisions need them (conf_lazy.h); conf_dump() reads them all. */
struct conf *conf_open(const char *conf_file, struct conf_diags *diags,
		       bool *used_image, char *why, size_t whylen);

#endif
