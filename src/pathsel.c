/*
 * pathsel.c: one selection of a local path (pathsel.h).
 */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "pathsel.h"

int mps_pathsel_addr(const char *s, struct mps_path_sel *sel)
{
	char buf[INET6_ADDRSTRLEN + 1];
	size_t len = strlen(s);

	if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
		s++;
		len -= 2;
	}
	if (len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	memset(sel, 0, sizeof(*sel));
	if (inet_pton(AF_INET, buf, sel->addr) == 1)
		sel->family = AF_INET;
	else if (inet_pton(AF_INET6, buf, sel->addr) == 1)
		sel->family = AF_INET6;
	else
		return -EINVAL;
	return 0;
}

int mps_pathsel_parse(const char *s, struct mps_path_sel *sel)
{
	size_t len = strlen(s);

	if (mps_pathsel_addr(s, sel) == 0)
		return 0;
	if (len == 0 || len >= MPS_CONFIG_IFNAME_MAX ||
	    strpbrk(s, "/=[] \t") != NULL)
		return -EINVAL;
	memset(sel, 0, sizeof(*sel));
	memcpy(sel->ifname, s, len + 1);
	return 0;
}
