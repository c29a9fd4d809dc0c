/* Socket address helpers for the tracer. Included once, by tracer.c. */
/* ---------- addresses ---------- */

union sa {
	struct sockaddr sa;
	struct sockaddr_in in4;
	struct sockaddr_in6 in6;
	struct sockaddr_storage ss;
};

static int v4_is_local(uint32_t be)
{
	uint32_t a = ntohl(be);
	return (a >> 24) == 127 || a == 0;
}

/* Loopback and unspecified destinations stay on this host: graft passes them. */
static int sa_is_local(const union sa *a)
{
	if (a->sa.sa_family == AF_INET)
		return v4_is_local(a->in4.sin_addr.s_addr);
	const struct in6_addr *x = &a->in6.sin6_addr;
	if (IN6_IS_ADDR_LOOPBACK(x) || IN6_IS_ADDR_UNSPECIFIED(x))
		return 1;
	if (IN6_IS_ADDR_V4MAPPED(x)) {
		uint32_t v4;
		memcpy(&v4, &x->s6_addr[12], 4);
		return v4_is_local(v4);
	}
	return 0;
}

static void sa_format(const union sa *a, char *addr, size_t addrlen, unsigned *port)
{
	if (a->sa.sa_family == AF_INET) {
		inet_ntop(AF_INET, &a->in4.sin_addr, addr, (socklen_t)addrlen);
		*port = ntohs(a->in4.sin_port);
	} else {
		inet_ntop(AF_INET6, &a->in6.sin6_addr, addr, (socklen_t)addrlen);
		if (a->in6.sin6_scope_id && !IN6_IS_ADDR_V4MAPPED(&a->in6.sin6_addr)) {
			size_t l = strlen(addr);
			snprintf(addr + l, addrlen - l, "%%%u", a->in6.sin6_scope_id);
		}
		*port = ntohs(a->in6.sin6_port);
	}
}

static int sa_is_wildcard(const union sa *a)
{
	if (a->sa.sa_family == AF_INET)
		return a->in4.sin_addr.s_addr == htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(&a->in6.sin6_addr);
}

static unsigned sa_port(const union sa *a)
{
	return a->sa.sa_family == AF_INET ? ntohs(a->in4.sin_port) : ntohs(a->in6.sin6_port);
}

/* An IPv4 destination: AF_INET, or AF_INET6 holding a v4-mapped address. */
static int sa_is_v4(const union sa *a)
{
	return a->sa.sa_family == AF_INET || IN6_IS_ADDR_V4MAPPED(&a->in6.sin6_addr);
}

static socklen_t sa_len(const union sa *a)
{
	return a->sa.sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

static void sa_loopback(union sa *a, int family, int mapped, uint16_t port)
{
	memset(a, 0, sizeof *a);
	if (family == AF_INET) {
		a->in4.sin_family = AF_INET;
		a->in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a->in4.sin_port = htons(port);
	} else {
		a->in6.sin6_family = AF_INET6;
		if (mapped) {
			a->in6.sin6_addr.s6_addr[10] = 0xff;
			a->in6.sin6_addr.s6_addr[11] = 0xff;
			a->in6.sin6_addr.s6_addr[12] = 127;
			a->in6.sin6_addr.s6_addr[15] = 1;
		} else {
			a->in6.sin6_addr = in6addr_loopback;
		}
		a->in6.sin6_port = htons(port);
	}
}

