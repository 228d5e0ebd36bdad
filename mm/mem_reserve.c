// SPDX-License-Identifier: GPL-2.0
/*
 * Emergency memory reserves sized by their users.
 *
 * The page allocator keeps the pages below each zone's min watermark for
 * the allocations that free memory: reclaim (PF_MEMALLOC), memalloc
 * sockets (__GFP_MEMALLOC) and, partly, atomic allocations.  Their amount
 * is min_free_kbytes, a fraction of RAM that suits swap to a local disk,
 * where writing a page needs little memory.  Swap over the network needs
 * more, and how much depends on what is active, not on RAM: buffers to
 * receive the replies that complete swap-out, skb heads to send it, and
 * the requests of swap-out in flight to a filesystem.  When the reserve
 * is too small, reclaim empties it, the replies cannot be received, and
 * the machine locks up (tests/nfs-swap, cases 030-032).
 *
 * A user takes its share while it is active (mem_reserve_get() when a
 * socket becomes SOCK_MEMALLOC, when a SWP_FS_OPS swapfile is activated)
 * and returns it when it stops (mem_reserve_put()).  The sum is added to
 * min_free_kbytes when the watermarks are computed.  A user may report
 * what it has in use, in its own unit (mem_reserve_use()).
 * Allocations that find a zone below its min watermark are charged to
 * the context that made them.  /proc/reserve_info shows it all, one
 * "key value" per line.
 *
 * How deep a zone is below its min watermark is measured as the
 * allocator's watermark check sees it, on the free lists
 * (NR_FREE_PAGES).  Pages on the per-CPU lists are not on them, yet once
 * the zone is below the watermark only allocations allowed into the
 * reserve can take them: they are reserve not yet used.  Both depths are
 * kept, "peak" and "peak_less_pcp", so a deep peak can be told from a
 * per-CPU refill.
 */
#include <linux/atomic.h>
#include <linux/init.h>
#include <linux/mem_reserve.h>
#include <linux/mm.h>
#include <linux/mmzone.h>
#include <linux/mutex.h>
#include <linux/preempt.h>
#include <linux/proc_fs.h>
#include <linux/sched.h>
#include <linux/seq_file.h>
#include <linux/vmstat.h>

#include "internal.h"
#include "swap.h"

struct mem_reserve_def {
	const char *name;
	unsigned long first;	/* pages while at least one is active */
	unsigned long each;	/* pages for every active one */
	const char *use_unit;	/* what mem_reserve_use() counts, if called */
	bool use_in_pages;	/* it counts pages: shown in kB */
	unsigned long use_max;	/* the most it lets itself use, if bounded */
};

/*
 * net: a memalloc socket's replies arrive in receive buffers that the
 * driver refills from the reserve while memalloc sockets exist (virtio-net:
 * a ring of 256 buffers of up to a page each): 256 pages, once.  Each
 * socket also sends from it: software GSO gives every ~1.4 KB segment of
 * a queued 64 KB skb its own head, ~1 KB, and TCP small queues let a
 * socket have up to 1 MB in the qdisc and the device (however much
 * swap-out is in flight): up to ~180 pages of heads, plus its own receive
 * queue, 256 pages per socket.  Its current use is the number of skbs alive
 * that hold memory from the reserves (skb->pfmemalloc), which
 * net/core/skbuff.c counts: a receive buffer, a head or a segment each,
 * a page or less.
 *
 * swap_fs: swap-out to a filesystem keeps at most SWAP_FS_INFLIGHT_MAX
 * pages in flight (mm/page_io.c), and SWAP_FS_RESERVE_PAGES (mm/swap.h)
 * is what that may take from the reserves.  The bound is global, so this
 * is taken once.  Its current use is the swap-out in flight, which
 * mm/page_io.c reports; /proc/reserve_info shows the bound with it.
 */
static const struct mem_reserve_def mem_reserve_defs[NR_MEM_RESERVE_USERS] = {
	[MEM_RESERVE_NET]	= { "net", 256, 256, "skbs" },
	[MEM_RESERVE_SWAP_FS]	= { "swap_fs", SWAP_FS_RESERVE_PAGES, 0, "kb", true,
				    SWAP_FS_INFLIGHT_MAX },
};

enum mem_reserve_ctx {
	MEM_RESERVE_CTX_IRQ,		/* interrupts, softirq: receive, tx completion */
	MEM_RESERVE_CTX_PF_MEMALLOC,	/* reclaimers, swap-out, memalloc receive workers */
	MEM_RESERVE_CTX_GFP_MEMALLOC,	/* __GFP_MEMALLOC from memalloc sockets */
	MEM_RESERVE_CTX_ATOMIC,		/* other atomic allocations */
	NR_MEM_RESERVE_CTX,
};

static const char * const mem_reserve_ctx_names[NR_MEM_RESERVE_CTX] = {
	[MEM_RESERVE_CTX_IRQ]		= "irq",
	[MEM_RESERVE_CTX_PF_MEMALLOC]	= "pf_memalloc",
	[MEM_RESERVE_CTX_GFP_MEMALLOC]	= "gfp_memalloc",
	[MEM_RESERVE_CTX_ATOMIC]	= "atomic",
};

static DEFINE_MUTEX(mem_reserve_mutex);
static unsigned int mem_reserve_active[NR_MEM_RESERVE_USERS];
static unsigned long mem_reserve_total;
static atomic_long_t mem_reserve_charged[NR_MEM_RESERVE_CTX];
static unsigned long mem_reserve_peak;
static unsigned long mem_reserve_peak_less_pcp;
static atomic_long_t mem_reserve_in_use[NR_MEM_RESERVE_USERS];
static unsigned long mem_reserve_peak_in_use[NR_MEM_RESERVE_USERS];

static unsigned long mem_reserve_user_pages(enum mem_reserve_user user)
{
	const struct mem_reserve_def *def = &mem_reserve_defs[user];
	unsigned int n = mem_reserve_active[user];

	return n ? def->first + n * def->each : 0;
}

static void mem_reserve_update(void)
{
	unsigned long total = 0;
	int user;

	for (user = 0; user < NR_MEM_RESERVE_USERS; user++)
		total += mem_reserve_user_pages(user);
	if (total == READ_ONCE(mem_reserve_total))
		return;
	WRITE_ONCE(mem_reserve_total, total);
	setup_per_zone_wmarks();
}

/**
 * mem_reserve_get - a user of the emergency reserve becomes active
 * @user: which user
 *
 * Grows the min watermarks by what @user needs.  Must be able to sleep.
 */
void mem_reserve_get(enum mem_reserve_user user)
{
	mutex_lock(&mem_reserve_mutex);
	mem_reserve_active[user]++;
	mem_reserve_update();
	mutex_unlock(&mem_reserve_mutex);
}
EXPORT_SYMBOL_GPL(mem_reserve_get);

/**
 * mem_reserve_put - a user of the emergency reserve stops
 * @user: which user, as given to mem_reserve_get()
 */
void mem_reserve_put(enum mem_reserve_user user)
{
	mutex_lock(&mem_reserve_mutex);
	if (!WARN_ON_ONCE(!mem_reserve_active[user]))
		mem_reserve_active[user]--;
	mem_reserve_update();
	mutex_unlock(&mem_reserve_mutex);
}
EXPORT_SYMBOL_GPL(mem_reserve_put);

/**
 * mem_reserve_use - what a user of the reserve has in use changes
 * @user: which user
 * @n: how much it starts (positive) or stops (negative) using
 *
 * What the user's share is sized from, in its own unit (swap_fs: the
 * pages of swap-out in flight; net: skbs holding reserve memory), for
 * /proc/reserve_info; the allocator does not look at it.  Any context.
 */
void mem_reserve_use(enum mem_reserve_user user, long n)
{
	long now = atomic_long_add_return(n, &mem_reserve_in_use[user]);

	/* racy like the depth peak: good enough for a peak */
	if (now > (long)READ_ONCE(mem_reserve_peak_in_use[user]))
		WRITE_ONCE(mem_reserve_peak_in_use[user], now);
}
EXPORT_SYMBOL_GPL(mem_reserve_use);

/* Pages the active users add to min_free_kbytes. */
unsigned long mem_reserve_pages(void)
{
	return READ_ONCE(mem_reserve_total);
}

static long zone_reserve_depth(struct zone *zone)
{
	return (long)zone->_watermark[WMARK_MIN] -
	       (long)zone_page_state(zone, NR_FREE_PAGES);
}

/* Pages on @zone's per-CPU lists, which NR_FREE_PAGES does not count. */
static long zone_pcp_pages(struct zone *zone)
{
	long pages = 0;
	int cpu;

	for_each_online_cpu(cpu)
		pages += READ_ONCE(per_cpu_ptr(zone->per_cpu_pageset, cpu)->count);
	return pages;
}

/*
 * Called by the page allocator for an allocation that was allowed below
 * the min watermark, after it took its pages from @zone.
 */
void mem_reserve_charge(struct zone *zone, unsigned int order, gfp_t gfp_mask)
{
	long depth = zone_reserve_depth(zone);
	enum mem_reserve_ctx ctx;

	if (depth <= 0)
		return;
	if (in_interrupt())
		ctx = MEM_RESERVE_CTX_IRQ;
	else if (current->flags & PF_MEMALLOC)
		ctx = MEM_RESERVE_CTX_PF_MEMALLOC;
	else if (gfp_mask & __GFP_MEMALLOC)
		ctx = MEM_RESERVE_CTX_GFP_MEMALLOC;
	else
		ctx = MEM_RESERVE_CTX_ATOMIC;
	atomic_long_add(1L << order, &mem_reserve_charged[ctx]);
	/* racy, and may miss a concurrent larger depth: good enough for a peak */
	if (depth > READ_ONCE(mem_reserve_peak))
		WRITE_ONCE(mem_reserve_peak, depth);
	depth -= zone_pcp_pages(zone);
	if (depth > 0 && depth > READ_ONCE(mem_reserve_peak_less_pcp))
		WRITE_ONCE(mem_reserve_peak_less_pcp, depth);
}

static int reserve_info_show(struct seq_file *m, void *v)
{
	unsigned long used = 0, pcp = 0;
	struct zone *zone;
	int i;

	seq_printf(m, "total_kb %lu\n",
		   (unsigned long)min_free_kbytes + K(mem_reserve_pages()));
	seq_printf(m, "min_free_kbytes %d\n", min_free_kbytes);
	mutex_lock(&mem_reserve_mutex);
	for (i = 0; i < NR_MEM_RESERVE_USERS; i++) {
		const struct mem_reserve_def *def = &mem_reserve_defs[i];
		long now, peak, max;

		seq_printf(m, "%s.users %u\n", def->name, mem_reserve_active[i]);
		seq_printf(m, "%s.size_kb %lu\n", def->name,
			   K(mem_reserve_user_pages(i)));
		if (!def->use_unit)
			continue;
		/* signed: a count that drifts below zero is a bug to see */
		now = atomic_long_read(&mem_reserve_in_use[i]);
		peak = READ_ONCE(mem_reserve_peak_in_use[i]);
		max = def->use_max;
		if (def->use_in_pages) {
			now *= PAGE_SIZE / 1024;
			peak *= PAGE_SIZE / 1024;
			max *= PAGE_SIZE / 1024;
		}
		seq_printf(m, "%s.in_use_%s %ld\n", def->name, def->use_unit, now);
		seq_printf(m, "%s.peak_in_use_%s %ld\n", def->name, def->use_unit,
			   peak);
		if (max)
			seq_printf(m, "%s.max_in_use_%s %ld\n", def->name,
				   def->use_unit, max);
	}
	mutex_unlock(&mem_reserve_mutex);

	for_each_populated_zone(zone) {
		used += max(zone_reserve_depth(zone), 0L);
		pcp += zone_pcp_pages(zone);
	}
	seq_printf(m, "used_kb %lu\n", K(used));
	seq_printf(m, "peak_kb %lu\n", K(READ_ONCE(mem_reserve_peak)));
	seq_printf(m, "peak_less_pcp_kb %lu\n",
		   K(READ_ONCE(mem_reserve_peak_less_pcp)));
	seq_printf(m, "pcp_kb %lu\n", K(pcp));
	for (i = 0; i < NR_MEM_RESERVE_CTX; i++)
		seq_printf(m, "charged.%s_kb %lu\n", mem_reserve_ctx_names[i],
			   K((unsigned long)atomic_long_read(&mem_reserve_charged[i])));
	return 0;
}

static int __init mem_reserve_init(void)
{
	proc_create_single("reserve_info", 0444, NULL, reserve_info_show);
	return 0;
}
device_initcall(mem_reserve_init);
