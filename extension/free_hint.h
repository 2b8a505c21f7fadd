/*
 * free_hint.h
 *		Where the live entries of the free-code index start, per database
 *		and pool, in shared memory (free_hint.c).
 */
#ifndef PSK_FREE_HINT_H
#define PSK_FREE_HINT_H

#include "postgres.h"

#include "storage/itemptr.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

/*
 * A position in codes_free_lru_idx within one pool: (freed_at NULLS FIRST,
 * id).  The lowest position is { false, 0, PG_INT64_MIN }.
 */
typedef struct PskFreeKey
{
	bool		freed;	  /* freed_at is not null */
	TimestampTz freed_at; /* when freed */
	int64		id;
} PskFreeKey;

extern const PskFreeKey psk_free_key_min;

extern int psk_free_key_cmp(const PskFreeKey *a, const PskFreeKey *b);

extern void psk_free_hint_shmem_request(void);
extern void psk_free_hint_shmem_startup(void);

extern bool psk_free_hint_read(const char *pool, Oid relfilenode,
							   PskFreeKey *start, uint64 *gen);
extern void psk_free_hint_raise(const char *pool, Oid relfilenode, uint64 gen,
								const PskFreeKey *stop);
extern void psk_free_hint_lower(const char *pool, const PskFreeKey *key);
extern void psk_free_hint_reset(void);

extern bool psk_free_entry_dead(Relation heap, ItemPointer tid);

#endif
