/*
 * calls.c - a mount's calls in flight (see calls.h).
 */
#include "fuse/calls.h"

#include <assert.h>
#include <stdbool.h>
#include <string.h>

void calls_init(struct calls *t)
{
	memset(t, 0, sizeof(*t));
	t->nfree = CALLS_MAX;
}

void calls_set(struct calls *t, uint32_t i, enum call_state to)
{
	static const bool legal[CALL_STATE_NR][CALL_STATE_NR] = {
		[CALL_FREE] = { [CALL_WAITING] = true },
		[CALL_WAITING] = { [CALL_SENT] = true, [CALL_DONE] = true, [CALL_FREE] = true },
		[CALL_SENT] = { [CALL_DONE] = true, [CALL_ABANDONED] = true, [CALL_WAITING] = true },
		[CALL_DONE] = { [CALL_FREE] = true, [CALL_HELD] = true },
		[CALL_ABANDONED] = { [CALL_FREE] = true },
		[CALL_HELD] = { [CALL_FREE] = true },
	};
	struct call_slot *s = &t->slot[i];

	assert(legal[s->state][to]);
	if (to == CALL_FREE)
		t->nfree++;
	else if (s->state == CALL_FREE)
		t->nfree--;
	s->state = to;
}

int calls_take(struct calls *t)
{
	for (uint32_t i = 0; i < CALLS_MAX && t->nfree > 0; i++)
		if (t->slot[i].state == CALL_FREE) {
			calls_set(t, i, CALL_WAITING);
			t->slot[i].req_id = (++t->seq * CALLS_MAX) | i;
			return (int)i;
		}
	return -1;
}

uint64_t calls_oldest(const struct calls *t, uint64_t below)
{
	uint64_t oldest = below;

	for (uint32_t i = 0; i < CALLS_MAX; i++)
		if (t->slot[i].state != CALL_FREE && t->slot[i].req_id < oldest)
			oldest = t->slot[i].req_id;
	return oldest;
}

uint64_t calls_sent(struct calls *t, uint32_t i, uint64_t gen)
{
	calls_set(t, i, CALL_SENT);
	t->slot[i].gen = gen;
	return calls_oldest(t, t->slot[i].req_id);
}

int calls_for_reply(const struct calls *t, uint64_t req_id, uint64_t gen)
{
	uint32_t i = (uint32_t)(req_id & (CALLS_MAX - 1));
	const struct call_slot *s = &t->slot[i];

	if ((s->state != CALL_SENT && s->state != CALL_ABANDONED) || s->req_id != req_id ||
	    s->gen != gen)
		return -1;
	return (int)i;
}

enum call_state calls_after_loss(const struct calls *t, uint32_t i, uint64_t gen)
{
	const struct call_slot *s = &t->slot[i];

	if (s->gen != gen)
		return s->state;
	if (s->state == CALL_ABANDONED)
		return CALL_FREE;
	if (s->state == CALL_SENT)
		return CALL_WAITING;
	return s->state;
}
