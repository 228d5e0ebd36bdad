/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Emergency memory reserves sized by their users (swap over the network).
 * See mm/mem_reserve.c.
 */
#ifndef _LINUX_MEM_RESERVE_H
#define _LINUX_MEM_RESERVE_H

#include <linux/types.h>

struct zone;

enum mem_reserve_user {
	MEM_RESERVE_NET,	/* memalloc sockets (SOCK_MEMALLOC) */
	MEM_RESERVE_SWAP_FS,	/* swap-out through a filesystem (SWP_FS_OPS) */
	NR_MEM_RESERVE_USERS,
};

#ifdef CONFIG_SWAP
void mem_reserve_get(enum mem_reserve_user user);
void mem_reserve_put(enum mem_reserve_user user);
void mem_reserve_use(enum mem_reserve_user user, long n);
unsigned long mem_reserve_pages(void);
void mem_reserve_charge(struct zone *zone, unsigned int order, gfp_t gfp_mask);
#else
static inline void mem_reserve_get(enum mem_reserve_user user) { }
static inline void mem_reserve_put(enum mem_reserve_user user) { }
static inline void mem_reserve_use(enum mem_reserve_user user, long n) { }
static inline unsigned long mem_reserve_pages(void) { return 0; }
static inline void mem_reserve_charge(struct zone *zone, unsigned int order,
				      gfp_t gfp_mask) { }
#endif

#endif /* _LINUX_MEM_RESERVE_H */
