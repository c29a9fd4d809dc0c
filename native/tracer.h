/* The tracer's whole state, one struct handed to the units that need it
 * (decide.c, tracer.c). Nothing here is global: the only globals are the
 * flags signal handlers touch (timers.c, signals.c). */
#ifndef GRAFT_TRACER_H
#define GRAFT_TRACER_H

#include <stdint.h>
#include <sys/types.h>

#include "byname.h"
#include "channel.h"
#include "dns.h"
#include "faults.h"
#include "filter.h"
#include "handover.h"
#include "later.h"
#include "peers.h"
#include "relay.h"
#include "rules.h"
#include "signals.h"
#include "tasks.h"
#include "timers.h"

struct ports {
	/* loopback ports bound but never listening: a connect there is
	 * refused by the kernel itself, so a non-blocking one reports it
	 * through SO_ERROR */
	uint16_t refuse4, refuse6;
};

struct tracer {
	struct rule_table rules;
	struct fault_table faults;
	struct channel chan;
	struct task_table tasks;
	struct timers timers;
	struct later later;
	struct handover handover;
	struct relay relay; /* redirects of relay rules, dialed and relayed here */
	struct ports ports;
	struct peers peers;           /* the sockets redirected, for getpeername/getsockname (names.h) */
	struct dns dns;               /* the sockets pointed at graft's DNS server (dns.h) */
	struct byname byname;         /* what by_name rules match, when there are any (handover.h fills it) */
	struct bpf_asm filter;        /* built before the fork, installed by the child */
	struct forwarding forwarding; /* signals sent to graft (signals.h) */
	pid_t main_pid;
	int main_status; /* wait status of the main process, -1 while it runs */
	int main_execed;
	int errfd; /* the main child's start-failure pipe until it execs, or -1 */
};

#endif
